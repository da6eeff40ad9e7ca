package service

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ReleaseID is a short name for what a release consists of: the same
// parts give the same ID, any change another. Both architectures name the
// resources a release makes with it (a migration Job or container, the
// single server's replicas), so that a new release is a new resource.
func ReleaseID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:10]
}
