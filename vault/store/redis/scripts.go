package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// script is a Lua script run with EVALSHA on exactly one key, so it is
// atomic on that key and valid in a Cluster.
type script struct {
	src string
	sha string
}

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(h[:])}
}

// hcas compares and sets one hash field: if the field's value (""
// standing for absent) equals ARGV[2], it is replaced by ARGV[3] (deleted
// when ARGV[3] is "") and the script returns {1}; otherwise it returns
// {0, current value or ""}. Stored values are never empty, so "" is free
// to mean absent.
var hcasScript = newScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur ~= ARGV[2] then return {0, cur} end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return {1}
`)

// recordPutScript writes a record (a hash r: revision, i: index, v:
// value) if its revision equals ARGV[1] ("any" for unconditional; an
// absent record has revision 0). It returns {new revision, old index}, or
// {-1, current revision} on a conflict. Revisions stay far below 2^53, where
// Lua's numbers are exact.
var recordPutScript = newScript(`
local cur = redis.call('HMGET', KEYS[1], 'r', 'i')
local rev = cur[1]
if rev == false then rev = '0' end
if ARGV[1] ~= 'any' and ARGV[1] ~= rev then return {-1, rev} end
local new = tonumber(rev) + 1
redis.call('HSET', KEYS[1], 'r', string.format('%d', new), 'i', ARGV[2], 'v', ARGV[3])
local old = cur[2]
if old == false then old = '' end
return {new, old}
`)

// recordDeleteScript deletes a record and returns {1 if it existed, its
// index}.
var recordDeleteScript = newScript(`
local i = redis.call('HGET', KEYS[1], 'i')
local n = redis.call('DEL', KEYS[1])
if i == false then i = '' end
return {n, i}
`)

// hmcas is hcas over many fields of one hash: ARGV holds (field, expected,
// new) triples, applied in order. It returns one reply per triple: 1 when
// the field was set (or deleted), otherwise the field's current value (""
// for absent). One call per bucket instead of one per field is what makes
// a rewrap step cheap for Redis.
var hmcasScript = newScript(`
local out = {}
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur == false then cur = '' end
  if cur == ARGV[i+1] then
    if ARGV[i+2] == '' then
      redis.call('HDEL', KEYS[1], ARGV[i])
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2])
    end
    out[#out+1] = 1
  else
    out[#out+1] = cur
  end
end
return out
`)

var allScripts = []*script{hcasScript, hmcasScript, recordPutScript, recordDeleteScript}

// loadScripts loads every script on every master of c.
func (s *Store) loadScripts(ctx context.Context, c goredis.UniversalClient) error {
	load := func(ctx context.Context, c goredis.Cmdable) error {
		// One pipeline, like every other call, so that it uses the
		// pipeline connection pool.
		cmds, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, sc := range allScripts {
				p.ScriptLoad(ctx, sc.src)
			}
			return nil
		})
		if err != nil {
			return unavailable(err)
		}
		for i, cmd := range cmds {
			if sha, _ := cmd.(*goredis.StringCmd).Result(); sha != allScripts[i].sha {
				return fmt.Errorf("redis store: SCRIPT LOAD returned %q, want %s", sha, allScripts[i].sha)
			}
		}
		return nil
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return load(ctx, n) })
	}
	return load(ctx, c)
}

// multiCASResult decodes the replies of hmcas: for each of n triples, ok
// or the current value.
func multiCASResult(c *goredis.Cmd, n int) (ok []bool, cur []string, err error) {
	v, err := c.Slice()
	if err != nil {
		return nil, nil, err
	}
	if len(v) != n {
		return nil, nil, errBadReply
	}
	ok, cur = make([]bool, n), make([]string, n)
	for i, r := range v {
		switch r := r.(type) {
		case int64:
			if r != 1 {
				return nil, nil, errBadReply
			}
			ok[i] = true
		case string:
			cur[i] = r
		default:
			return nil, nil, errBadReply
		}
	}
	return ok, cur, nil
}

// scriptResult decodes the {status, value} array of hcas and the record
// scripts.
func scriptResult(c *goredis.Cmd) (int64, string, error) {
	v, err := c.Slice()
	if err != nil {
		return 0, "", err
	}
	if len(v) == 0 {
		return 0, "", errBadReply
	}
	n, ok := v[0].(int64)
	if !ok {
		return 0, "", errBadReply
	}
	var s string
	if len(v) > 1 {
		if s, ok = v[1].(string); !ok {
			return 0, "", errBadReply
		}
	}
	return n, s, nil
}
