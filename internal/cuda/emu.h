// CPU emulation of the CUDA built-ins that kernels.cu uses, for the tests
// of package cuda. Compile with g++ -std=c++20 -ffp-contract=off.
//
// A launch runs its blocks one after another on the calling thread. A
// kernel without __shared__ memory runs its threads one after another; one
// with it runs each thread as a fiber (ucontext) until its next barrier or
// its return, one thread at a time: a phase ends when every thread has
// arrived, and the next begins. The order of the blocks, and of the threads
// in every block and phase, is a permutation drawn from the device's launch
// number (emu_set_order: shuffled, the default; ascending; descending), so
// a thread that reads what another writes in the same phase sees a
// different value from order to order. Checks, after compute-sanitizer's
// synccheck, initcheck and memcheck: every thread of a block waits at the
// same __syncthreads (by line) and none returns while others wait at one;
// __shared__ arrays are NaN-filled at each block's start and have a
// NaN-filled margin after their end that no thread may write (emu.go
// rewrites each declaration, adding the margin and a call of emu_fresh).
// Not caught by the orders: a lost update (threads that read, change and
// write one element in the same phase; each fiber runs to its barrier
// unbroken). Built with EMU_TSAN and -fsanitize=thread, the fibers are
// ThreadSanitizer's, switched without synchronising, and each barrier
// releases into a token of its phase that every fiber acquires when the
// next phase resumes it: ThreadSanitizer then reports any two accesses of
// one phase that conflict, lost updates included (tsan_test.go). A failed
// check ends the launch with an error (emu_error).
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#ifdef EMU_TSAN
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void AnnotateIgnoreWritesBegin(const char* f, int l);
void AnnotateIgnoreWritesEnd(const char* f, int l);
void AnnotateBenignRaceSized(const char* f, int l, const volatile void* mem, long size, const char* desc);
}
#define EMU_TSAN_ONLY(x) x
#else
#define EMU_TSAN_ONLY(x)
#endif

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __shared__ static

// EMU_PAD is the margin, in elements, after each __shared__ array.
#define EMU_PAD 32

// emu_order: 0 shuffled, 1 ascending, 2 descending.
static int emu_order;
static uint64_t emu_blocks, emu_phase;
EMU_TSAN_ONLY(static char emu_tok[3]; static void* emu_tsan_sched;)
static char emu_msg[512];
static bool emu_failed, emu_serial;

static void emu_fail(const char* msg) {
	if (!emu_failed) snprintf(emu_msg, sizeof emu_msg, "%s", msg);
	emu_failed = true;
}

static uint64_t emu_mix(uint64_t x) { // splitmix64's finaliser
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

// emu_perm sets p to the order of n items under emu_order, seeded.
static void emu_perm(std::vector<unsigned>& p, unsigned n, uint64_t seed) {
	p.resize(n);
	for (unsigned i = 0; i < n; i++) p[i] = emu_order == 2 ? n - 1 - i : i;
	if (emu_order != 0) return;
	for (unsigned i = n; i > 1; i--) {
		seed = emu_mix(seed);
		std::swap(p[i - 1], p[seed % i]);
	}
}

static dim3 emu_index(unsigned i, dim3 d) { return dim3{i % d.x, (i / d.x) % d.y, i / (d.x * d.y)}; }

// emu_shared is a __shared__ array the running launch has used: its
// margin (the last pad bytes) must stay as emu_fresh filled it.
struct emu_shared {
	unsigned char* p;
	size_t n, pad;
	uint64_t block;
	const char *name, *file;
	int line;
};
static std::vector<emu_shared> emu_arrays;

// emu_fresh NaN-fills a __shared__ array of n bytes, margin included, the
// first time a thread of the running block reaches its declaration.
static void emu_fresh(void* p, size_t n, size_t pad, const char* name, const char* file, int line) {
	// (The fill stands for the block's start: not an access of the thread.)
	EMU_TSAN_ONLY(AnnotateIgnoreWritesBegin(__FILE__, __LINE__));
	bool seen = false;
	for (auto& s : emu_arrays)
		if (s.p == p) {
			if (s.block != emu_blocks) {
				memset(p, 0xff, n);
				s.block = emu_blocks;
			}
			seen = true;
		}
	if (!seen) {
		memset(p, 0xff, n);
		emu_arrays.push_back({(unsigned char*)p, n, pad, emu_blocks, name, file, line});
	}
	EMU_TSAN_ONLY(AnnotateIgnoreWritesEnd(__FILE__, __LINE__));
}

// emu_margins fails the launch where the block just run wrote into the
// margin of one of its __shared__ arrays.
static bool emu_margins(unsigned block) {
	for (auto& s : emu_arrays) {
		if (s.block != emu_blocks) continue;
		for (size_t i = s.n - s.pad; i < s.n; i++)
			if (s.p[i] != 0xff) {
				char m[256];
				snprintf(m, sizeof m, "block %u wrote byte %zu of __shared__ %s of %zu bytes (%s:%d): out of bounds", block, i,
				         s.name, s.n - s.pad, s.file, s.line);
				emu_fail(m);
				return false;
			}
	}
	return true;
}

enum { EMU_READY, EMU_AT_BARRIER, EMU_RETURNED };

struct emu_fiber {
	ucontext_t ctx;
	int state, line;
	const char* file;
	EMU_TSAN_ONLY(void* tsan; bool started;)
};
static std::vector<emu_fiber> emu_fibers;
static std::vector<char> emu_stacks;
static const size_t emu_stack_bytes = 128 << 10;
static ucontext_t emu_sched;
static unsigned emu_cur;
static void (*emu_body)(void*);
static void* emu_body_arg;

static void emu_sync(const char* file, int line) {
	if (emu_serial) {
		char m[256];
		snprintf(m, sizeof m, "__syncthreads (%s:%d) in a kernel without __shared__ memory (run without barriers)", file, line);
		emu_fail(m);
		return;
	}
	emu_fibers[emu_cur].state = EMU_AT_BARRIER;
	emu_fibers[emu_cur].line = line;
	emu_fibers[emu_cur].file = file;
	EMU_TSAN_ONLY(uint64_t ph = emu_phase; __tsan_release(&emu_tok[ph & 1]); __tsan_switch_to_fiber(emu_tsan_sched, 1));
	swapcontext(&emu_fibers[emu_cur].ctx, &emu_sched);
	EMU_TSAN_ONLY(__tsan_acquire(&emu_tok[ph & 1]));
}
#define __syncthreads() emu_sync(__FILE__, __LINE__)

static void emu_fiber_main() {
	emu_body(emu_body_arg);
	emu_fibers[emu_cur].state = EMU_RETURNED;
	EMU_TSAN_ONLY(__tsan_release(&emu_tok[2]); __tsan_switch_to_fiber(emu_tsan_sched, 1));
	// Back to the scheduler without returning: a return would leave this
	// function (for ThreadSanitizer, the scheduler's frame) after the switch.
	setcontext(&emu_sched);
}

// emu_block_end makes the scheduler see all the block's fibers did, and
// drops them (ThreadSanitizer's).
static void emu_block_end() {
	EMU_TSAN_ONLY(for (int i = 0; i < 3; i++) __tsan_acquire(&emu_tok[i]);
	              for (auto& fb : emu_fibers) if (fb.tsan) { __tsan_destroy_fiber(fb.tsan); fb.tsan = nullptr; })
}

template <class F>
static void emu_call(void* f) {
	(*(F*)f)();
}

// emu_run_serial runs a kernel without barriers: every thread of every
// block in turn, on the calling thread.
template <class F>
int emu_run_serial(dim3 g, dim3 b, uint64_t launch, F f) {
	gridDim = g;
	blockDim = b;
	unsigned nb = g.x * g.y * g.z, nt = b.x * b.y * b.z;
	std::vector<unsigned> bo, to;
	emu_perm(bo, nb, emu_mix(launch));
	emu_serial = true;
	for (unsigned bi : bo) {
		blockIdx = emu_index(bi, g);
		emu_blocks++;
		emu_perm(to, nt, emu_mix(launch ^ emu_mix(bi)));
		for (unsigned t : to) {
			threadIdx = emu_index(t, b);
			f();
		}
	}
	emu_serial = false;
	return emu_failed ? 2 : 0;
}

// emu_run runs a kernel with barriers, each block's threads as fibers that
// take turns, phase by phase.
template <class F>
int emu_run(dim3 g, dim3 b, uint64_t launch, F f) {
	gridDim = g;
	blockDim = b;
	unsigned nb = g.x * g.y * g.z, nt = b.x * b.y * b.z;
	if (emu_stacks.size() < nt * emu_stack_bytes) emu_stacks.resize(nt * emu_stack_bytes);
	emu_fibers.assign(nt, emu_fiber{});
	emu_body = emu_call<F>;
	emu_body_arg = &f;
	EMU_TSAN_ONLY(if (!emu_tsan_sched) emu_tsan_sched = __tsan_get_current_fiber(); // the harness launches from one thread
	              // the scheduler's hand-overs, not the kernel's accesses:
	              for (auto& fb : emu_fibers) {
		              AnnotateBenignRaceSized(__FILE__, __LINE__, &fb.state, 2 * sizeof(int), "fiber state");
		              AnnotateBenignRaceSized(__FILE__, __LINE__, &fb.file, sizeof fb.file, "fiber state");
	              }
	              AnnotateBenignRaceSized(__FILE__, __LINE__, &threadIdx, sizeof threadIdx, "threadIdx");
	              AnnotateBenignRaceSized(__FILE__, __LINE__, &emu_cur, sizeof emu_cur, "emu_cur");
	              AnnotateBenignRaceSized(__FILE__, __LINE__, &emu_phase, sizeof emu_phase, "emu_phase");
	              AnnotateBenignRaceSized(__FILE__, __LINE__, &emu_failed, sizeof emu_failed, "emu_failed");
	              AnnotateBenignRaceSized(__FILE__, __LINE__, emu_msg, sizeof emu_msg, "emu_msg");)
	std::vector<unsigned> bo, to;
	emu_perm(bo, nb, emu_mix(launch));
	char m[256];
	for (unsigned bi : bo) {
		blockIdx = emu_index(bi, g);
		emu_blocks++;
		for (unsigned t = 0; t < nt; t++) {
			emu_fiber& fb = emu_fibers[t];
			getcontext(&fb.ctx);
			fb.ctx.uc_stack.ss_sp = &emu_stacks[t * emu_stack_bytes];
			fb.ctx.uc_stack.ss_size = emu_stack_bytes;
			fb.ctx.uc_link = &emu_sched;
			makecontext(&fb.ctx, emu_fiber_main, 0);
			fb.state = EMU_READY;
			EMU_TSAN_ONLY(fb.tsan = __tsan_create_fiber(0); fb.started = false;)
		}
		for (uint64_t phase = 0;; phase++) {
			emu_phase = phase;
			emu_perm(to, nt, emu_mix(launch ^ emu_mix(bi ^ emu_mix(phase))));
			int waiting = -1, returned = -1;
			for (unsigned t : to) {
				emu_fiber& fb = emu_fibers[t];
				if (fb.state == EMU_RETURNED) continue;
				emu_cur = t;
				threadIdx = emu_index(t, b);
				fb.state = EMU_READY;
				// The first switch into a fiber carries what came before the
				// block (its inputs, the shared arrays' fill); later ones
				// carry nothing: the threads of one phase are unordered.
				EMU_TSAN_ONLY(bool sync = !fb.started; fb.started = true; __tsan_switch_to_fiber(fb.tsan, sync ? 0 : 1));
				swapcontext(&emu_sched, &fb.ctx);
				if (emu_failed) {
					emu_block_end();
					return 2;
				}
				if (fb.state == EMU_RETURNED) {
					returned = (int)t;
				} else if (waiting < 0) {
					waiting = (int)t;
				} else if (fb.line != emu_fibers[waiting].line) {
					snprintf(m, sizeof m, "block %u: threads %d and %u wait at different __syncthreads (%s:%d and :%d)", bi,
					         waiting, t, fb.file, emu_fibers[waiting].line, fb.line);
					emu_fail(m);
					emu_block_end();
					return 2;
				}
			}
			if (waiting < 0) { // every thread has returned
				emu_block_end();
				if (!emu_margins(bi)) return 2;
				break;
			}
			if (returned >= 0) {
				snprintf(m, sizeof m, "block %u: thread %d returned while thread %d waits at __syncthreads (%s:%d)", bi, returned,
				         waiting, emu_fibers[waiting].file, emu_fibers[waiting].line);
				emu_fail(m);
				emu_block_end();
				return 2;
			}
		}
	}
	return 0;
}

static std::mutex emu_mu;

extern "C" void emu_set_order(int o) {
	std::lock_guard<std::mutex> lock(emu_mu);
	emu_order = o;
}

// emu_error is the message of the last failed launch (call it before the
// next launch).
extern "C" const char* emu_error() { return emu_msg; }
