// Kernels with the faults the CPU emulation must catch (emu_test.go), one
// block of 64 threads unless said.

// race reads a neighbour's slot in the phase in which it is written.
extern "C" __global__ void race(float* out) {
	__shared__ float s[64];
	s[threadIdx.x] = (float)threadIdx.x;
	out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// fixed is race with the barrier it lacks.
extern "C" __global__ void fixed(float* out) {
	__shared__ float s[64];
	s[threadIdx.x] = (float)threadIdx.x;
	__syncthreads();
	out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// divergent has odd and even threads wait at different barriers.
extern "C" __global__ void divergent(float* out) {
	__shared__ float s[64];
	s[threadIdx.x] = 1;
	if (threadIdx.x % 2) {
		__syncthreads();
	} else {
		__syncthreads();
	}
	out[threadIdx.x] = s[threadIdx.x ^ 1];
}

// early has thread 0 return before the barrier the others wait at.
extern "C" __global__ void early(float* out) {
	__shared__ float s[64];
	if (threadIdx.x == 0) return;
	s[threadIdx.x] = 1;
	__syncthreads();
	out[threadIdx.x] = s[threadIdx.x];
}

// stale: only block 0 writes its array; every block reads its own (several
// blocks).
extern "C" __global__ void stale(float* out) {
	__shared__ float s[64];
	if (blockIdx.x == 0) s[threadIdx.x] = 1;
	__syncthreads();
	out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
}

// lostupdate has every thread add one to one element in one phase.
extern "C" __global__ void lostupdate(float* out) {
	__shared__ float s[64];
	if (threadIdx.x == 0) s[0] = 0;
	__syncthreads();
	s[0] += 1;
	__syncthreads();
	out[threadIdx.x] = s[0];
}

// overflow writes one element past the end of its block's array.
extern "C" __global__ void overflow(float* out) {
	__shared__ float s[64];
	s[threadIdx.x + 1] = 1;
	__syncthreads();
	out[threadIdx.x] = s[threadIdx.x];
}

// oob writes one element past the end of out (n elements).
extern "C" __global__ void oob(float* out, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i <= n) out[i] = 1;
}

// serialsync has a barrier but no array of block memory.
extern "C" __global__ void serialsync(float* out) {
	out[threadIdx.x] = 1;
	__syncthreads();
}
