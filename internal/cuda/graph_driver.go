//go:build linux

package cuda

import (
	"errors"
	"fmt"
)

// cuStreamCaptureModeThreadLocal is CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: a
// call of the capturing thread that could touch the capture (a synchronous
// copy, an allocation) fails instead of going unrecorded. Every call of a
// device is made on its worker thread, so this guards the capture as
// global mode would, without forbidding those calls to the other devices
// of the process (global mode forbids them in every thread while any
// capture runs).
const cuStreamCaptureModeThreadLocal = 1

// driverGraph is an instantiated CUDA graph.
type driverGraph struct {
	d          *driverBackend
	graph, exe uintptr
}

func (g *driverGraph) replay() error {
	return g.d.do(func() error { return g.d.l.check("cuGraphLaunch", g.d.l.graphLaunch(g.exe, g.d.capStream)) })
}

func (g *driverGraph) destroy() {
	if g.d.closed.Load() { // the device's context took the graph with it
		return
	}
	g.d.do(func() error {
		g.d.l.graphExecDestroy(g.exe)
		g.d.l.graphDestroy(g.graph)
		return nil
	})
}

// capturing is the error of a call that a capture cannot record.
func (d *driverBackend) capturing(call string) error {
	if d.stream != 0 {
		return fmt.Errorf("cuda: %s while capturing a graph", call)
	}
	return nil
}

// setStreams points cuBLAS and cuDNN at stream s (0: the default stream).
// cuBLAS keeps its own workspace (cublasSetStream resets it to the default
// pool): from cuBLAS 12.2 on that pool allocates with cudaMallocAsync,
// which a capture records, so no cublasSetWorkspace is needed (PyTorch
// dropped its explicit one for 12.2+, pytorch#113994). cuBLAS 11 and
// 12.0–12.1 take a new workspace per captured graph: memory that grows
// with each recapture, which here happens only when Graph.Stale says so.
func (d *driverBackend) setStreams(s uintptr) error {
	if r := d.blas.setStream(d.handle, s); r != 0 {
		return fmt.Errorf("cuda: cublasSetStream: %s", cublasStatus(r))
	}
	if d.dnnHandle != 0 {
		if err := d.dnn.check("cudnnSetStream", d.dnn.setStream(d.dnnHandle, s)); err != nil {
			return err
		}
	}
	return nil
}

// capture records f's launches, products, copies and convolutions on a
// stream of its own (stream capture, thread-local mode) and instantiates them as
// a CUDA graph; afterwards everything goes to the default stream again.
func (d *driverBackend) capture(f func() error) (replayer, error) {
	var out replayer
	err := d.do(func() error {
		l := d.l
		switch {
		case l.graphSymbolsError != nil:
			return l.graphSymbolsError
		case d.stream != 0:
			return errors.New("cuda: a capture inside a capture")
		}
		if d.capStream == 0 {
			if err := l.check("cuStreamCreate", l.streamCreate(&d.capStream, 0)); err != nil {
				return err
			}
		}
		s := d.capStream
		if err := d.setStreams(s); err != nil {
			return errors.Join(err, d.setStreams(0))
		}
		if err := l.check("cuStreamBeginCapture", l.beginCapture(s, cuStreamCaptureModeThreadLocal)); err != nil {
			return errors.Join(err, d.setStreams(0))
		}
		d.stream = s
		var graph uintptr
		ended := false
		defer func() { // f panicked: leave no capture running, no library on s
			if !ended {
				d.stream = 0
				l.endCapture(s, &graph)
				if graph != 0 {
					l.graphDestroy(graph)
				}
				d.setStreams(0)
			}
		}()
		ferr := f()
		d.stream = 0
		eerr := l.check("cuStreamEndCapture", l.endCapture(s, &graph))
		ended = true
		if err := errors.Join(ferr, eerr, d.setStreams(0)); err != nil {
			if graph != 0 {
				l.graphDestroy(graph)
			}
			return err
		}
		var exe uintptr
		if err := l.check("cuGraphInstantiate", l.graphInstantiate(&exe, graph, 0)); err != nil {
			l.graphDestroy(graph)
			return err
		}
		out = &driverGraph{d: d, graph: graph, exe: exe}
		return nil
	})
	return out, err
}
