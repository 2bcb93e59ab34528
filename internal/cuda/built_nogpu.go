//go:build !gpu

package cuda

// Built reports whether this build runs networks on a GPU (-tags gpu).
const Built = false
