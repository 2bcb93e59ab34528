package generate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// checkOutputs refuses, before anything is sampled, an output that could not
// be written (a folder that is not there or not writable, a name of another
// format) or that would replace what is not an earlier output of the same
// kind: -out and -gif may replace a PNG or a GIF, never a checkpoint or any
// other file (fsutil.CheckOutFile), and -out-dir must not hold samples of
// an earlier run (its sample-NNNNN.png would mix with the new ones), nor
// -out among them.
func (c Config) checkOutputs() error {
	if err := fsutil.CheckOutFile("-out", c.Out, ".png", fsutil.PNGMagic); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := fsutil.CheckOutFile("-gif", c.GIF, ".gif", fsutil.GIFMagic); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := c.notAnInput(); err != nil {
		return err
	}
	if c.OutDir == "" {
		return nil
	}
	if err := fsutil.CheckOutDir("-out-dir", c.OutDir); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.Out != "" {
		// Names compared as a case-insensitive file system would, folders
		// with their links resolved.
		base, in := strings.ToLower(filepath.Base(c.Out)), filepath.Dir(c.Out)
		if m, _ := filepath.Match("sample-*.png", base); m && data.Within(in, c.OutDir) && data.Within(c.OutDir, in) {
			return fmt.Errorf("%w: -out %s is in -out-dir under its samples' names (sample-NNNNN.png), where a sample would replace the grid: give the grid another name", ErrConfig, c.Out)
		}
		if data.Within(in, c.OutDir) && data.Within(c.OutDir, in) {
			// cmd/eval -samples DIR would take the grid for a sample (and
			// refuse the folder: images of two sizes).
			return fmt.Errorf("%w: -out %s is in -out-dir %s, among the samples: give the grid a place outside it", ErrConfig, c.Out, c.OutDir)
		}
	}
	return earlierSamples(c.OutDir)
}

// notAnInput refuses an -out or -gif that is the file of an input
// (-inpaint, -mask, -colorize; links and other names of it too): the
// samples replaced the image they were drawn from.
func (c Config) notAnInput() error {
	for _, out := range []struct{ flag, path string }{{"-out", c.Out}, {"-gif", c.GIF}} {
		if out.path == "" {
			continue
		}
		o, err := os.Stat(out.path)
		if err != nil {
			continue // not there yet: no input
		}
		for _, in := range []struct{ flag, path string }{{"-inpaint", c.Inpaint}, {"-mask", c.Mask}, {"-colorize", c.Colorize}} {
			if in.path == "" {
				continue
			}
			if i, err := os.Stat(in.path); err == nil && os.SameFile(i, o) {
				return fmt.Errorf("%w: %s %s is the %s image: the samples would replace it; give %s another name", ErrConfig, out.flag, out.path, in.flag, out.flag)
			}
		}
	}
	return nil
}

// outsideImages refuses an output inside the image folder that the model
// of dataset was trained on (a folder dataset's): its samples would join
// the training images there, or replace one.
func (c Config) outsideImages(dataset string) error {
	folder, ok := data.IsFolder(dataset)
	if !ok || folder == "" {
		return nil
	}
	for _, o := range []struct{ flag, path string }{{"-out", c.Out}, {"-out-dir", c.OutDir}, {"-gif", c.GIF}} {
		if o.path != "" && data.Within(folder, o.path) {
			return fmt.Errorf("%w: %s %s is inside the image folder %s, which this model was trained on and where nothing is written (samples there would join its training images); give one outside it", ErrConfig, o.flag, o.path, folder)
		}
	}
	return nil
}

// earlierSamples refuses an -out-dir that holds samples.
func earlierSamples(dir string) error {
	if old, _ := fsutil.Glob(dir, "sample-*.png"); len(old) > 0 {
		return fmt.Errorf("%w: -out-dir %s already holds %d samples (sample-*.png) of an earlier run, which would mix with these: give an empty or new folder", ErrConfig, dir, len(old))
	}
	return nil
}

// outDirLock is the file in -out-dir whose lock keeps a second sampler
// from writing samples there while the first draws its own.
const outDirLock = ".lock"

// claimOutDir takes -out-dir for this run until the lock is released: it
// creates the folder, locks it against other samplers (one that holds it
// is named in the error), checks again under the lock that it holds no
// samples, and removes the temporary files that a killed run left there.
// Its release unlocks the folder, and removes it where this run made it
// and wrote nothing there.
func claimOutDir(c Config) (release func(), _ error) {
	removeNew, err := fsutil.NewDir(c.OutDir, outDirLock)
	if err != nil {
		return nil, fmt.Errorf("generate: -out-dir: %w", err)
	}
	lock, err := fsutil.TryLock(filepath.Join(c.OutDir, outDirLock))
	var held *fsutil.LockedError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("%w: -out-dir %s is being written by another sampler (%s): give another folder", ErrConfig, c.OutDir, held.Holder)
	}
	if err != nil {
		removeNew()
		return nil, fmt.Errorf("generate: -out-dir: %w", err)
	}
	// A folder this run made, and left without samples (an error, a
	// stop), goes again.
	release = func() { lock.Unlock(); removeNew() } // unlocked first: Windows removes no open file
	if err := earlierSamples(c.OutDir); err != nil {
		release()
		return nil, err
	}
	if _, err := fsutil.RemoveTemps(c.OutDir, "sample-*.png"); err != nil {
		release()
		return nil, fmt.Errorf("generate: -out-dir: %w", err)
	}
	return release, nil
}
