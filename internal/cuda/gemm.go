package cuda

// colMajorGemm is one cuBLAS sgemm call: C = op(A)·op(B) on column-major
// matrices, op 0 (N) or 1 (T); its first matrix argument is passed "A".
type colMajorGemm struct {
	opA, opB      int32
	m, n, k       int32
	lda, ldb, ldc int32
}

// cublasCall maps the row-major product C (m×n) = op(A)·op(B) to cuBLAS's
// column-major sgemm: a row-major matrix is the column-major view of its
// transpose, so Cᵀ = op(B)ᵀ·op(A)ᵀ is computed, with row-major B passed as
// cuBLAS's first matrix and A as its second.
func cublasCall(transA, transB bool, m, n, k int) colMajorGemm {
	op := func(t bool) int32 {
		if t {
			return 1 // CUBLAS_OP_T
		}
		return 0 // CUBLAS_OP_N
	}
	g := colMajorGemm{opA: op(transB), opB: op(transA), m: int32(n), n: int32(m), k: int32(k), lda: int32(n), ldb: int32(k), ldc: int32(n)}
	if transB {
		g.lda = int32(k)
	}
	if transA {
		g.ldb = int32(m)
	}
	return g
}
