// CPU emulation of the CUDA built-ins that kernels.cu uses, for the tests
// of package cuda: each block's threads run as OS threads, one block after
// another; __syncthreads is a std::barrier (a thread that returns drops out
// of it); __shared__ arrays are static, which is per block since blocks run
// one at a time. Compile with g++ -std=c++20 -ffp-contract=off.
#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};
thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
thread_local std::barrier<>* emu_barrier;

#define __global__
#define __device__
#define __shared__ static
inline void __syncthreads() { emu_barrier->arrive_and_wait(); }

// emu_run_serial runs a kernel without barriers: every thread of every block
// in turn, on the calling thread.
template <class F>
void emu_run_serial(dim3 g, dim3 b, F f) {
	gridDim = g;
	blockDim = b;
	for (unsigned bz = 0; bz < g.z; bz++)
		for (unsigned by = 0; by < g.y; by++)
			for (unsigned bx = 0; bx < g.x; bx++)
				for (unsigned t = 0; t < b.x * b.y * b.z; t++) {
					threadIdx = dim3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
					blockIdx = dim3{bx, by, bz};
					f();
				}
}

// emu_run runs a kernel with barriers: each block's threads as OS threads.
template <class F>
void emu_run(dim3 g, dim3 b, F f) {
	gridDim = g;
	blockDim = b;
	unsigned nt = b.x * b.y * b.z;
	for (unsigned bz = 0; bz < g.z; bz++)
		for (unsigned by = 0; by < g.y; by++)
			for (unsigned bx = 0; bx < g.x; bx++) {
				std::barrier<> bar(nt);
				std::vector<std::thread> ts;
				ts.reserve(nt);
				for (unsigned t = 0; t < nt; t++) {
					ts.emplace_back([&, t] {
						threadIdx = dim3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
						blockIdx = dim3{bx, by, bz};
						emu_barrier = &bar;
						f();
						bar.arrive_and_drop();
					});
				}
				for (auto& th : ts) th.join();
			}
}
