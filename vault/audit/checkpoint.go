package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Checkpoint is a signed statement by a node's Log that its chain had record
// Seq with hash Hash at Time. Seq 0 with an empty Hash is the genesis
// checkpoint of an empty chain. A Log writes checkpoints into its sink and
// into the checkpoint store kept apart from the log; [Verify] checks that the
// log contains every checkpointed (Seq, Hash) and does not end before the
// latest one.
type Checkpoint struct {
	Node string    `json:"node"`
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
}

// checkpointDomain prefixes the signed message, so that a checkpoint
// signature can never be taken for a signature over anything else.
const checkpointDomain = "fieldvault audit checkpoint v1\n"

var errBadSignature = errors.New("audit: checkpoint signature does not verify")

// verifySignature is ed25519.Verify; FuzzVerify memoizes it, because
// coverage instrumentation makes curve arithmetic too slow to fuzz the
// parsing and chain logic around it.
var verifySignature = ed25519.Verify

// appendCheckpointBody appends the canonical encoding of c, the part that is
// signed (after checkpointDomain).
func appendCheckpointBody(b []byte, c *Checkpoint) []byte {
	b = append(b, `{"node":`...)
	b = appendString(b, c.Node)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, `,"hash":`...)
	b = appendString(b, c.Hash)
	b = append(b, `,"time":`...)
	b = appendTime(b, c.Time)
	return append(b, '}')
}

// appendCheckpoint appends the signed checkpoint line
//
//	{"checkpoint":<body>,"sig":"<hex Ed25519 signature>"}
//
// scratch is reused for the signed message.
func appendCheckpoint(b []byte, c *Checkpoint, key ed25519.PrivateKey, scratch []byte) ([]byte, []byte) {
	scratch = append(scratch[:0], checkpointDomain...)
	scratch = appendCheckpointBody(scratch, c)
	sig := ed25519.Sign(key, scratch)
	b = append(b, `{"checkpoint":`...)
	b = append(b, scratch[len(checkpointDomain):]...)
	b = append(b, `,"sig":"`...)
	b = hex.AppendEncode(b, sig)
	b = append(b, `"}`...)
	return b, scratch
}

// parseCheckpoint decodes a checkpoint line strictly and verifies its
// signature with pub. It returns errMalformed, errNonCanonical or
// errBadSignature; with the last two the decoded checkpoint is returned too.
func parseCheckpoint(line []byte, pub ed25519.PublicKey) (*Checkpoint, error) {
	var w struct {
		Checkpoint *Checkpoint `json:"checkpoint"`
		Sig        string      `json:"sig"`
	}
	if err := json.Unmarshal(line, &w); err != nil || w.Checkpoint == nil || !validTime(w.Checkpoint.Time) {
		return nil, errMalformed
	}
	c := w.Checkpoint
	msg := appendCheckpointBody([]byte(checkpointDomain), c)
	canon := append([]byte(`{"checkpoint":`), msg[len(checkpointDomain):]...)
	canon = append(canon, `,"sig":`...)
	canon = appendString(canon, w.Sig)
	canon = append(canon, '}')
	if !bytes.Equal(canon, line) {
		return c, errNonCanonical
	}
	sig, err := hex.DecodeString(w.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || hex.EncodeToString(sig) != w.Sig {
		return c, errBadSignature
	}
	if len(pub) != ed25519.PublicKeySize || !verifySignature(pub, msg, sig) {
		return c, errBadSignature
	}
	return c, nil
}
