package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/mpi"
	"github.com/ncsn-go/ncsn/model"
)

// dataParallel is the side of a run spread over the ranks of an MPI job
// (Config.Comm): each rank computes the gradients of its slice of every
// global batch, one all-reduce per step sums them (with the per-image losses
// for the log and a stop flag), and every rank applies the same Adam step,
// so the weights stay identical. On devices the gradients come to the host
// for the all-reduce and go back. Rank 0 alone writes.
type dataParallel struct {
	comm        mpi.Comm
	rank, size  int
	local, from int // this rank's images of the global batch: [from, from+local)
	n           int // the trainable values: the gradients each step sums
	buf         []float32
}

// agree tells every rank whether all are ready: err is this rank's own
// (returned as it is); where only others failed to `what`, an error says
// how many. Every rank calls it at the same point, so none waits for one
// that failed. A nil dp (one process) returns err.
func (dp *dataParallel) agree(err error, what string) error {
	if dp == nil {
		return err
	}
	failed := []float32{0}
	if err != nil {
		failed[0] = 1
	}
	if rerr := dp.comm.AllReduceSum(failed); rerr != nil && err == nil {
		err = fmt.Errorf("train: %w", rerr)
	}
	if err == nil && failed[0] > 0 {
		err = fmt.Errorf("train: %d of the %d MPI ranks could not %s (their errors are in their output)", int(failed[0]), dp.size, what)
	}
	return err
}

// anyRank reports whether flag is set on any rank (flag itself in a run of
// one process).
func (dp *dataParallel) anyRank(flag bool) (bool, error) {
	if dp == nil {
		return flag, nil
	}
	b := []float32{0}
	if flag {
		b[0] = 1
	}
	if err := dp.comm.AllReduceSum(b); err != nil {
		return false, fmt.Errorf("train: %w", err)
	}
	return b[0] > 0, nil
}

// tellFailure is a failing rank's part in the all-reduce the others make
// next (reduce): it asks them to stop with an error, not to wait for it.
func (dp *dataParallel) tellFailure(batch int) {
	b := make([]float32, dp.n+4*batch+3)
	b[len(b)-1] = 1
	dp.comm.AllReduceSum(b) // this rank returns its own error whatever comes back
}

// ranksFailed is reduce's error on the ranks that did not fail when k of
// the size ranks failed at a step: every one has made the steps before it,
// and nothing of it.
type ranksFailed struct{ k, size, step int }

func (e *ranksFailed) Error() string {
	return fmt.Sprintf("train: %d of the %d MPI ranks failed (their errors are in their output): stopped after step %d", e.k, e.size, e.step)
}

// newDataParallel is cfg's side of the ranks (nil: one process), with an
// error where cfg's batch cannot be split among them (dp is then still
// there, for the others to be told).
func newDataParallel(cfg Config) (*dataParallel, error) {
	if cfg.Comm == nil {
		return nil, nil
	}
	n, r := cfg.Comm.Size(), cfg.Comm.Rank()
	dp := &dataParallel{comm: cfg.Comm, rank: r, size: n, local: cfg.Batch / n, from: r * cfg.Batch / n}
	if cfg.Batch%n != 0 {
		return dp, fmt.Errorf("%w: -batch %d is not a multiple of the %d ranks", ErrConfig, cfg.Batch, n)
	}
	return dp, nil
}

// imageRNG is the random stream of image i of the global batch at step: the
// draws of an image do not depend on which rank makes them, so any number of
// ranks computes the same batch, and a resumed run the same next batches.
func imageRNG(seed uint64, step, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x6e63736e64617461, uint64(step)<<24|uint64(i)))
}

// share gives every rank rank 0's starting state: rank 0 has started (fresh
// or resumed) as r, or failed with err; the others receive its state and
// resume from it.
func (dp *dataParallel) share(r *run, err error, cfg Config) (*run, error) {
	// The payload is a byte saying whether σ_data is yet to come from the
	// data (1) or is rank 0's (0), then rank 0's state.
	var payload []byte
	if dp.rank == 0 {
		if err == nil {
			var st *checkpoint.State
			if st, err = r.state(r.elapsed); err == nil {
				fromData := byte(0)
				if st.Step == 0 && st.Model.Precond == model.PrecondEDM && st.Model.SigmaData == 0 {
					// σ_data comes from the data when the loop starts, on every
					// rank alike; the state file needs a valid one meanwhile.
					st.Model.SigmaData, fromData = 1, 1
				}
				b := bytes.NewBuffer([]byte{fromData})
				if err = checkpoint.Encode(b, st); err == nil {
					payload = b.Bytes()
				}
			}
		}
		if err != nil {
			payload = nil // tells the others to stop
		}
	}
	payload, berr := mpi.BroadcastBytes(dp.comm, payload, 0)
	if berr != nil {
		return nil, fmt.Errorf("train: %w", berr)
	}
	if dp.rank == 0 {
		return r, err
	}
	if len(payload) == 0 {
		return nil, errors.New("train: rank 0 could not start the run (its error is in its log)")
	}
	fromData := payload[0] == 1
	st, err := checkpoint.Decode(bytes.NewReader(payload[1:]))
	if err != nil {
		return nil, fmt.Errorf("train: rank 0's state: %w", err)
	}
	// The run's plan (-steps, -save-every, -keep) is rank 0's: a rank given
	// another -steps would make another number of steps, and all-reduce
	// for ever (and follow another learning-rate schedule: other weights).
	own := cfg
	var extra trainExtra
	if err := json.Unmarshal(st.Train, &extra); err == nil { // else resumeState says so
		own.Steps, own.SaveEvery, own.Keep = extra.Steps, extra.SaveEvery, extra.Keep
	}
	r, err = resumeState(own, st, fmt.Sprintf("rank 0's state (step %d)", st.Step))
	if err != nil {
		return nil, err
	}
	if st.Step == 0 {
		r.ckpt = "" // a fresh run, as on rank 0
		if fromData {
			// As rank 0: from the data. (This rank's own flag was taken:
			// a -sigma-data given to rank 0 alone left the others to take
			// the data's, and train another model, silently.)
			r.cfg.Model.SigmaData = 0
		}
	}
	return r, nil
}

// reduce sums the gradients, the gathered per-image losses, levels, times
// and noise scales, and the stop and failure flags of every rank (step is
// the step they are of); it returns the global mean loss, per-image arrays
// of the whole batch, and whether any rank is stopping, or an error where
// a rank failed (a failing rank passes failed and returns its own error).
func (dp *dataParallel) reduce(grads [][]float32, batch, step int, loss float64, per []float64, lvl []int, tt, sig []float64, stop, failed bool) (float64, []float64, []int, []float64, []float64, bool, error) {
	n := 0
	for _, gr := range grads {
		n += len(gr)
	}
	if n != dp.n { // the same on every rank: none is left waiting
		return 0, nil, nil, nil, nil, false, fmt.Errorf("train: %d gradient values, where the model has %d trainable", n, dp.n)
	}
	size := n + 4*batch + 3
	if len(dp.buf) != size {
		dp.buf = make([]float32, size)
	}
	b := dp.buf
	clear(b)
	k := 0
	for _, gr := range grads {
		k += copy(b[k:], gr)
	}
	for i := range per {
		j := dp.from + i
		b[n+j], b[n+batch+j], b[n+2*batch+j], b[n+3*batch+j] = float32(per[i]), float32(lvl[i]), float32(tt[i]), float32(sig[i])
	}
	b[n+4*batch] = float32(loss)
	if stop {
		b[n+4*batch+1] = 1
	}
	if failed {
		b[n+4*batch+2] = 1
	}
	if err := dp.comm.AllReduceSum(b); err != nil {
		return 0, nil, nil, nil, nil, false, fmt.Errorf("train: %w", err)
	}
	if k := int(b[n+4*batch+2]); k > 0 && !failed {
		return 0, nil, nil, nil, nil, false, &ranksFailed{k, dp.size, step}
	}
	inv := 1 / float32(dp.size)
	k = 0
	for _, d := range grads {
		for i := range d {
			d[i] = b[k+i] * inv
		}
		k += len(d)
	}
	gper, glvl := make([]float64, batch), make([]int, batch)
	gtt, gsig := make([]float64, batch), make([]float64, batch)
	for j := 0; j < batch; j++ {
		gper[j], glvl[j], gtt[j], gsig[j] = float64(b[n+j]), int(b[n+batch+j]), float64(b[n+2*batch+j]), float64(b[n+3*batch+j])
	}
	return float64(b[n+4*batch]) / float64(dp.size), gper, glvl, gtt, gsig, b[n+4*batch+1] > 0, nil
}

// sameData refuses, on every rank, a run whose ranks hold other data than
// rank 0: another folder of images (each rank reads its own, by its own
// path), other noise levels or σ_data taken from it. Ranks whose images
// differed trained another model than the log said, without a word. A
// folder's images (or a Go caller's Config.Data) are compared by their
// values' hash, not by their files' times, which a copy to another machine
// changes; the official datasets' files are checked against their MD5s on
// every rank already.
func (dp *dataParallel) sameData(r *run, ds *data.Dataset, cfg Config) error {
	if dp == nil {
		return nil
	}
	mine := fmt.Sprintf("%d images of %d×%d×%d, σ_max %g, %d levels, σ_data %g", ds.N, ds.Channels, ds.Height, ds.Width, r.cfg.SigmaMax, len(r.sigmas), r.cfg.Model.SigmaData)
	// The run's dataset, not the command's: a bare resume's command names
	// the default (and the check was passed over).
	if _, folder := data.IsFolder(r.cfg.Dataset); folder || cfg.Data != nil {
		h := sha256.New()
		buf := make([]byte, 4*4096)
		for i := 0; i < len(ds.Images); i += 4096 {
			part := ds.Images[i:min(i+4096, len(ds.Images))]
			for j, v := range part {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
			}
			h.Write(buf[:4*len(part)])
		}
		h.Write(ds.Labels) // a classifier's, or guidance's: other labels train another model too
		mine += fmt.Sprintf(", values %x", h.Sum(nil)[:8])
	}
	theirs, err := mpi.BroadcastBytes(dp.comm, []byte(mine), 0)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var own error
	if string(theirs) != mine {
		own = fmt.Errorf("%w: rank %d's data is not rank 0's: %s here, %s on rank 0 (each rank reads its own -dataset and -data-dir: give every one the same images)", ErrConfig, dp.rank, mine, theirs)
	}
	return dp.agree(own, "start with rank 0's data")
}
