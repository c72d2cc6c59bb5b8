package kek

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
)

// transitPrefix starts every ciphertext Transit writes with its default
// version template, "vault:v{{version}}:".
const transitPrefix = "vault:v"

// transitMinPayload is the shortest payload an AEAD Transit key
// (aes128-gcm96, aes256-gcm96, chacha20-poly1305) produces: a 12-byte nonce
// and a 16-byte tag.
const transitMinPayload = 12 + 16

// parseTransitCiphertext checks that b is a ciphertext exactly as Transit
// writes it, "vault:v<N>:<base64>", and returns N. It is stricter than
// Vault: the version must be a canonical decimal in 1..2^32-1 (Vault reads
// "v0" as v1 and accepts "v01"), and the payload must be canonical padded
// base64 of at least a nonce and a tag (Go's decoder otherwise skips line
// breaks and ignores non-zero padding bits, which would let a changed blob
// decrypt). Every failure wraps ErrInvalidCiphertext.
func parseTransitCiphertext(b []byte) (uint32, error) {
	if len(b) < len(transitPrefix) || string(b[:len(transitPrefix)]) != transitPrefix {
		return 0, fmt.Errorf("kek/transit: not a Transit ciphertext: %w", ErrInvalidCiphertext)
	}
	rest := b[len(transitPrefix):]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 10 || i >= len(rest) || rest[i] != ':' || (rest[0] == '0') {
		return 0, fmt.Errorf("kek/transit: malformed version in Transit ciphertext: %w", ErrInvalidCiphertext)
	}
	v, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil || v == 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("kek/transit: malformed version in Transit ciphertext: %w", ErrInvalidCiphertext)
	}
	payload := rest[i+1:]
	for _, c := range payload {
		if !isBase64Char(c) {
			return 0, fmt.Errorf("kek/transit: Transit ciphertext is not base64: %w", ErrInvalidCiphertext)
		}
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(payload)))
	n, err := base64.StdEncoding.Strict().Decode(dst, payload)
	if err != nil {
		return 0, fmt.Errorf("kek/transit: Transit ciphertext is not canonical base64: %w", ErrInvalidCiphertext)
	}
	if n < transitMinPayload {
		return 0, fmt.Errorf("kek/transit: Transit ciphertext is too short: %w", ErrInvalidCiphertext)
	}
	return uint32(v), nil
}

// formatTransitCiphertext is the inverse of parseTransitCiphertext.
func formatTransitCiphertext(version uint32, payload []byte) []byte {
	out := strconv.AppendUint([]byte(transitPrefix), uint64(version), 10)
	out = append(out, ':')
	return base64.StdEncoding.AppendEncode(out, payload)
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}
