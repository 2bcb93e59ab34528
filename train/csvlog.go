package train

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/fsutil"
)

const csvName = checkpoint.LogName

// csvLog appends one row per step to the run's CSV: the loss, the speed, the
// training time, and the mean loss of the images at each noise level (NCSN)
// or in each tenth of [0, 1] in t (continuous processes).
type csvLog struct {
	f      *os.File
	w      *csv.Writer
	levels int
}

// openCSV opens the run's CSV for appending. On resume the rows past the
// checkpoint's step (written after it, then lost with the crash) are dropped,
// so the file tells one consistent history.
func openCSV(dir string, buckets []string, step int) (*csvLog, error) {
	path := filepath.Join(dir, csvName)
	header := append([]string{"step", "loss", "images_per_s", "elapsed_s"}, buckets...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if err := truncateCSV(path, header, step); err != nil {
			return nil, err
		}
	} else if err := writeRows(path, [][]string{header}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &csvLog{f: f, w: csv.NewWriter(f), levels: len(buckets)}, nil
}

// truncateCSV drops the rows of path past step, and a last row cut short
// (the process killed while writing it: every row ends in a newline); an
// empty file gets its header back, and a file that is not a training log is
// refused.
func truncateCSV(path string, header []string, step int) error {
	b, err := fsutil.ReadRegular(path)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	torn := false
	if n := len(b); n > 0 && b[n-1] != '\n' {
		b, torn = b[:bytes.LastIndexByte(b, '\n')+1], true
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return fmt.Errorf("train: %s: %w (the run's training log: move it aside to go on with a new one)", path, err)
	}
	if len(rows) == 0 { // emptied: the history is gone, the header comes back
		return writeRows(path, [][]string{header})
	}
	if rows[0][0] != "step" {
		return fmt.Errorf("train: %s does not begin with the training log's header (step,loss,…): not this run's log; move it aside to go on with a new one", path)
	}
	if !slices.Equal(rows[0], header) {
		if len(rows) == 1 && !torn {
			// Only the header of a run killed in its first step, whose
			// noise levels were others: this run's rows went under it, and
			// its next resume was refused ("wrong number of fields").
			return writeRows(path, [][]string{header})
		}
		return fmt.Errorf("train: %s has the columns %s; this run logs %s: another run's log; move it aside to go on with a new one", path, strings.Join(rows[0], ","), strings.Join(header, ","))
	}
	keep := rows[:0]
	for i, row := range rows {
		if i == 0 {
			keep = append(keep, row)
			continue
		}
		s, err := strconv.Atoi(row[0])
		if err != nil || s < 1 {
			// Dropped as "after the step", a hand-edited row was lost.
			return fmt.Errorf("train: %s: row %d has step %q, not a step number: move the log aside, or mend the row, to go on", path, i+1, row[0])
		}
		if s <= step {
			keep = append(keep, row)
		}
	}
	if len(keep) == len(rows) && !torn {
		return nil
	}
	return writeRows(path, keep)
}

// logRows is the number of lines after the first in dir's training log (0
// where there is none).
func logRows(dir string) int {
	b, err := fsutil.ReadRegular(filepath.Join(dir, csvName))
	if err != nil {
		return 0
	}
	return bytes.Count(bytes.TrimRight(b, "\n"), []byte("\n"))
}

// logAfter reports whether dir's training log holds the rows a run resumed
// from step wrote: every complete row of a step after step, the first of
// step+1 (a log of another branch, from a later step, was cut).
func logAfter(dir string, step int) bool {
	b, err := fsutil.ReadRegular(filepath.Join(dir, csvName))
	if err != nil {
		return false
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1] // a row cut short is not counted
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, line := range lines[1:] {
		field, _, _ := strings.Cut(line, ",")
		if s, err := strconv.Atoi(field); err != nil || s <= step || i == 0 && s != step+1 {
			return false
		}
	}
	return true
}

// writeRows replaces the CSV at path with rows, atomically.
func writeRows(path string, rows [][]string) error {
	return fsutil.WriteAtomic(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.WriteAll(rows)
		return cw.Error()
	})
}

func (l *csvLog) row(step int, loss, ips, elapsed float64, per []float64, lvl []int) error {
	if l == nil { // a rank other than 0 writes nothing
		return nil
	}
	sum := make([]float64, l.levels)
	cnt := make([]int, l.levels)
	for i, p := range per {
		sum[lvl[i]] += p
		cnt[lvl[i]]++
	}
	rec := []string{strconv.Itoa(step), fmtF(loss), strconv.FormatFloat(ips, 'f', 1, 64), strconv.FormatFloat(elapsed, 'f', 1, 64)}
	for k := 0; k < l.levels; k++ {
		if cnt[k] == 0 {
			rec = append(rec, "")
		} else {
			rec = append(rec, fmtF(sum[k]/float64(cnt[k])))
		}
	}
	// Each row goes to the file at once (a kill then tears at most the row
	// being written, which a resume drops), and cmd/plot sees it.
	if err := l.w.Write(rec); err != nil {
		return err
	}
	return l.flush()
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func (l *csvLog) flush() error {
	if l == nil {
		return nil
	}
	l.w.Flush()
	if err := l.w.Error(); err != nil {
		return fmt.Errorf("train: writing %s: %w", csvName, err)
	}
	return nil
}

func (l *csvLog) close() error {
	if l == nil {
		return nil
	}
	err := l.flush()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("train: closing %s: %w", csvName, cerr)
	}
	return err
}
