package cuda

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
)

// Source is the CUDA C source of every kernel.
//
//go:embed kernels.cu
var Source string

// SourceHash is a short hash of Source, the key of cached PTX.
func SourceHash() string {
	h := sha256.Sum256([]byte(Source))
	return hex.EncodeToString(h[:8])
}

// ErrNoLibrary is wrapped when a native library cannot be loaded.
var ErrNoLibrary = errors.New("cuda: library not found")
