package redis

import (
	"context"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// pipe collects the commands of one round trip. Arguments are boxed as
// *string pointing into a slab, so queueing a command costs one allocation
// (the command itself) however many arguments it has.
//
// exec sends the commands in chunks of about chunkBytes, in parallel on
// separate connections, keeping each group (see group) in one chunk. With
// appendfsync always, Redis reads at most 16 KiB from a connection per
// event-loop iteration and fsyncs the AOF once per iteration, so a 300 KiB
// pipeline on one connection costs about 20 fsyncs while the same commands
// spread over 20 connections cost one. Commands on one key are ordered only
// within a group; callers put commands whose order matters in one group.
type pipe struct {
	ctx   context.Context
	cmds  []goredis.Cmder
	ends  []int // end index (exclusive) of each closed group
	bytes []int // approximate request bytes of each closed group
	open  int   // approximate bytes of the group being built

	strs []string // current slab; pointers into it stay valid
	args []any    // current args slab
}

func newPipe(ctx context.Context, sizeHint int) *pipe {
	return &pipe{
		ctx:  ctx,
		cmds: make([]goredis.Cmder, 0, sizeHint),
		strs: make([]string, 0, 4*sizeHint+8),
		args: make([]any, 0, 5*sizeHint+8),
	}
}

func (p *pipe) box(s string) any {
	if len(p.strs) == cap(p.strs) {
		p.strs = make([]string, 0, max(64, cap(p.strs)))
	}
	p.strs = append(p.strs, s)
	p.open += len(s) + 8
	return &p.strs[len(p.strs)-1]
}

// Command names, boxed once: boxing a string that is not a constant
// allocates.
var (
	cmdHGET    any = "hget"
	cmdHEXISTS any = "hexists"
	cmdHSETNX  any = "hsetnx"
	cmdHSET    any = "hset"
	cmdHDEL    any = "hdel"
	cmdHINCRBY any = "hincrby"
	cmdHGETALL any = "hgetall"
	cmdHKEYS   any = "hkeys"
	cmdHMGET   any = "hmget"
	cmdZADD    any = "zadd"
	cmdZREM    any = "zrem"
	cmdZRANGE  any = "zrange"
	cmdSET     any = "set"
	cmdEVALSHA any = "evalsha"
)

// argv returns a slice of the args slab holding name and the boxed strings.
func (p *pipe) argv(name any, strs ...string) []any {
	n := 1 + len(strs)
	if len(p.args)+n > cap(p.args) {
		p.args = make([]any, 0, max(n, 256, cap(p.args)))
	}
	start := len(p.args)
	p.args = append(p.args, name)
	for _, s := range strs {
		p.args = append(p.args, p.box(s))
	}
	p.open += 16
	return p.args[start:len(p.args):len(p.args)]
}

// group closes the current group: a chunk may end after it.
func (p *pipe) group() {
	if len(p.ends) > 0 && p.ends[len(p.ends)-1] == len(p.cmds) {
		return
	}
	p.ends = append(p.ends, len(p.cmds))
	p.bytes = append(p.bytes, p.open)
	p.open = 0
}

func (p *pipe) add(c goredis.Cmder) { p.cmds = append(p.cmds, c) }

func (p *pipe) hget(key, field string) *goredis.StringCmd {
	c := goredis.NewStringCmd(p.ctx, p.argv(cmdHGET, key, field)...)
	p.add(c)
	return c
}

func (p *pipe) hexists(key, field string) *goredis.BoolCmd {
	c := goredis.NewBoolCmd(p.ctx, p.argv(cmdHEXISTS, key, field)...)
	p.add(c)
	return c
}

func (p *pipe) hsetnx(key, field, value string) *goredis.BoolCmd {
	c := goredis.NewBoolCmd(p.ctx, p.argv(cmdHSETNX, key, field, value)...)
	p.add(c)
	return c
}

// hsetEmpty sets every field to "" in one HSET.
func (p *pipe) hsetEmpty(key string, fields []string) *goredis.IntCmd {
	strs := make([]string, 1, 1+2*len(fields))
	strs[0] = key
	for _, f := range fields {
		strs = append(strs, f, "")
	}
	c := goredis.NewIntCmd(p.ctx, p.argv(cmdHSET, strs...)...)
	p.add(c)
	return c
}

func (p *pipe) hdel(key string, fields ...string) *goredis.IntCmd {
	strs := make([]string, 0, 1+len(fields))
	strs = append(append(strs, key), fields...)
	c := goredis.NewIntCmd(p.ctx, p.argv(cmdHDEL, strs...)...)
	p.add(c)
	return c
}

func (p *pipe) hincrby(key, field string, n int64) *goredis.IntCmd {
	args := p.argv(cmdHINCRBY, key, field)
	c := goredis.NewIntCmd(p.ctx, append(args, n)...)
	p.add(c)
	return c
}

func (p *pipe) hgetall(key string) *goredis.MapStringStringCmd {
	c := goredis.NewMapStringStringCmd(p.ctx, p.argv(cmdHGETALL, key)...)
	p.add(c)
	return c
}

func (p *pipe) hkeys(key string) *goredis.StringSliceCmd {
	c := goredis.NewStringSliceCmd(p.ctx, p.argv(cmdHKEYS, key)...)
	p.add(c)
	return c
}

func (p *pipe) hmget(key string, fields ...string) *goredis.SliceCmd {
	strs := make([]string, 0, 1+len(fields))
	strs = append(append(strs, key), fields...)
	c := goredis.NewSliceCmd(p.ctx, p.argv(cmdHMGET, strs...)...)
	p.add(c)
	return c
}

func (p *pipe) zadd(key, member string) *goredis.IntCmd {
	args := p.argv(cmdZADD, key)
	args = append(args, 0, p.box(member))
	c := goredis.NewIntCmd(p.ctx, args...)
	p.add(c)
	return c
}

func (p *pipe) zrem(key, member string) *goredis.IntCmd {
	c := goredis.NewIntCmd(p.ctx, p.argv(cmdZREM, key, member)...)
	p.add(c)
	return c
}

func (p *pipe) zrangeAll(key string) *goredis.StringSliceCmd {
	args := p.argv(cmdZRANGE, key)
	c := goredis.NewStringSliceCmd(p.ctx, append(args, 0, -1)...)
	p.add(c)
	return c
}

func (p *pipe) set(key, value string) *goredis.StatusCmd {
	c := goredis.NewStatusCmd(p.ctx, p.argv(cmdSET, key, value)...)
	p.add(c)
	return c
}

// eval queues EVALSHA of sc on one key; exec loads the script and repeats
// the command if the server does not know it.
func (p *pipe) eval(sc *script, key string, args ...string) *goredis.Cmd {
	strs := make([]string, 0, 3+len(args))
	strs = append(strs, sc.sha, "1", key)
	strs = append(strs, args...)
	c := goredis.NewCmd(p.ctx, p.argv(cmdEVALSHA, strs...)...)
	p.add(c)
	return c
}

// maxParallelChunks bounds the connections one exec uses at once.
const maxParallelChunks = 16

// exec runs the queued commands. It returns an error only when a command
// failed for a reason other than a Redis reply (connection, timeout,
// context): the call then has no trustworthy answer. Reply errors (and
// goredis.Nil) are left on the commands for the caller.
func (p *pipe) exec(s *Store, c goredis.UniversalClient) error {
	p.group()
	if len(p.cmds) == 0 {
		return nil
	}
	if err := s.execChunks(p.ctx, c, p.cmds, p.ends, p.bytes); err != nil {
		return err
	}
	// Scripts unknown to a server (it restarted, or a node joined): load
	// and run those commands again; they did not run.
	var again []goredis.Cmder
	for _, cmd := range p.cmds {
		if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			again = append(again, cmd)
		}
	}
	if len(again) > 0 {
		if err := s.loadScripts(p.ctx, c); err != nil {
			return err
		}
		if err := s.execChunks(p.ctx, c, again, []int{len(again)}, []int{0}); err != nil {
			return err
		}
	}
	for _, cmd := range p.cmds {
		if err := cmd.Err(); err != nil && !isReplyError(err) {
			return unavailable(err)
		}
	}
	return nil
}

// execChunks sends cmds, split at group ends into chunks of about
// s.chunkBytes, in parallel.
func (s *Store) execChunks(ctx context.Context, c goredis.UniversalClient, cmds []goredis.Cmder, ends, bytes []int) error {
	var chunks [][]goredis.Cmder
	start, size := 0, 0
	for i, end := range ends {
		size += bytes[i]
		if size >= s.chunkBytes || i == len(ends)-1 {
			chunks = append(chunks, cmds[start:end])
			start, size = end, 0
		}
	}
	if len(chunks) == 1 {
		return s.run(ctx, c, chunks[0])
	}
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, maxParallelChunks)
	var wg sync.WaitGroup
	for i, ch := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = s.run(ctx, c, ch)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// run sends one pipeline. Its error is the first non-reply error, if any.
func (s *Store) run(ctx context.Context, c goredis.UniversalClient, cmds []goredis.Cmder) error {
	pl := c.Pipeline()
	_ = pl.BatchProcess(ctx, cmds...)
	_, _ = pl.Exec(ctx)
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !isReplyError(err) {
			return unavailable(err)
		}
	}
	return nil
}

// isReplyError reports whether err is an answer from Redis (including
// "no such key") rather than a failure to get one.
func isReplyError(err error) bool {
	if err == goredis.Nil {
		return true
	}
	var re goredis.Error
	if !asRedisError(err, &re) {
		return false
	}
	// Server states in which the command did not run: treat as outages.
	msg := re.Error()
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN",
		"NOREPLICAS", "MISCONF", "OOM", "BUSY", "NOAUTH", "WRONGPASS", "NOPERM", "MOVED", "ASK"} {
		if strings.HasPrefix(msg, p) {
			return false
		}
	}
	return true
}
