// Package data reads the training sets — MNIST and Fashion-MNIST from their
// IDX files, CIFAR-10 from its binary batches — and fetches them from the
// sources that can be reached, accepting a file only when its checksum
// matches the official one; and it reads a folder of the user's own images
// (LoadFolder), cached beside the data.
package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrFormat is wrapped by every error about a malformed data file.
var ErrFormat = errors.New("data: bad file")

const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
	maxIDXItems    = 1 << 24 // far beyond any real set; guards huge allocations from corrupt headers
	maxIDXSide     = 4096
	maxIDXBytes    = 1 << 30 // pixel bytes of one file: 20× the largest real set
)

// readUpTo reads r until it has n bytes or r ends, whichever comes first.
// Its buffer grows as the bytes arrive (doubling from 64 KiB), so a header
// that declares gigabytes costs no more memory than the bytes really there.
// A reader that keeps returning nothing is an io.ErrNoProgress.
func readUpTo(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, 64<<10))
	for idle := 0; len(buf) < n; {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), len(buf)))
		}
		k, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+k]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case k > 0:
			idle = 0
		default:
			if idle++; idle > 100 {
				return buf, io.ErrNoProgress
			}
		}
	}
	return buf, nil
}

// readPayload reads the want bytes a header declared, refusing a short file.
func readPayload(r io.Reader, want int, what string) ([]byte, error) {
	raw, err := readUpTo(r, want)
	if err != nil {
		return nil, fmt.Errorf("%w: truncated: header says %s (%d bytes), read %d: %v", ErrFormat, what, want, len(raw), err)
	}
	if len(raw) < want {
		return nil, fmt.Errorf("%w: truncated: header says %s (%d bytes), the data ends after %d", ErrFormat, what, want, len(raw))
	}
	return raw, nil
}

// maybeGunzip returns a reader of the decompressed bytes when r starts with
// the gzip magic, and of r itself otherwise.
func maybeGunzip(r io.Reader) (io.Reader, func() error, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip header: %v", ErrFormat, err)
		}
		return zr, zr.Close, nil
	}
	return br, func() error { return nil }, nil
}

// DecodeIDXImages reads an IDX image file (gzip-compressed or raw): n images of
// rows×cols bytes, returned as float32 in [0,1], image after image.
func DecodeIDXImages(r io.Reader) (pix []float32, n, rows, cols int, err error) {
	zr, closeFn, err := maybeGunzip(r)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	var hdr [4]uint32
	if err := binary.Read(zr, binary.BigEndian, &hdr[0]); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%w: short header: %v", ErrFormat, err)
	}
	if hdr[0] != idxImagesMagic {
		return nil, 0, 0, 0, fmt.Errorf("%w: magic %#08x, want %#08x (IDX images)", ErrFormat, hdr[0], idxImagesMagic)
	}
	if err := binary.Read(zr, binary.BigEndian, hdr[1:]); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%w: short header: %v", ErrFormat, err)
	}
	// Checked as uint64 before any conversion, so no int can overflow.
	if hdr[1] == 0 || hdr[1] > maxIDXItems || hdr[2] == 0 || hdr[3] == 0 || hdr[2] > maxIDXSide || hdr[3] > maxIDXSide ||
		uint64(hdr[1])*uint64(hdr[2])*uint64(hdr[3]) > maxIDXBytes {
		return nil, 0, 0, 0, fmt.Errorf("%w: implausible dimensions %d×%d×%d", ErrFormat, hdr[1], hdr[2], hdr[3])
	}
	n, rows, cols = int(hdr[1]), int(hdr[2]), int(hdr[3])
	raw, err := readPayload(zr, n*rows*cols, fmt.Sprintf("%d images of %d×%d", n, rows, cols))
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if err := trailing(zr, closeFn); err != nil {
		return nil, 0, 0, 0, err
	}
	pix = make([]float32, len(raw))
	for i, b := range raw {
		pix[i] = float32(b) / 255
	}
	return pix, n, rows, cols, nil
}

// DecodeIDXLabels reads an IDX label file (gzip-compressed or raw).
func DecodeIDXLabels(r io.Reader) ([]uint8, error) {
	zr, closeFn, err := maybeGunzip(r)
	if err != nil {
		return nil, err
	}
	var hdr [2]uint32
	if err := binary.Read(zr, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: short header: %v", ErrFormat, err)
	}
	if hdr[0] != idxLabelsMagic {
		return nil, fmt.Errorf("%w: magic %#08x, want %#08x (IDX labels)", ErrFormat, hdr[0], idxLabelsMagic)
	}
	if hdr[1] == 0 || hdr[1] > maxIDXItems {
		return nil, fmt.Errorf("%w: implausible label count %d", ErrFormat, hdr[1])
	}
	n := int(hdr[1])
	lab, err := readPayload(zr, n, fmt.Sprintf("%d labels", n))
	if err != nil {
		return nil, err
	}
	if err := trailing(zr, closeFn); err != nil {
		return nil, err
	}
	for i, l := range lab {
		if l > 9 {
			return nil, fmt.Errorf("%w: label %d is %d, not a digit class", ErrFormat, i, l)
		}
	}
	return lab, nil
}

// trailing rejects data after the declared end, and lets gzip check its CRC.
func trailing(r io.Reader, closeFn func() error) error {
	var buf [1]byte
	k, err := io.ReadFull(r, buf[:])
	if k > 0 {
		return fmt.Errorf("%w: data after the declared end", ErrFormat)
	}
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if err := closeFn(); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return nil
}

// EncodeIDXImages writes n images of rows×cols bytes as a raw IDX file (for
// tests and tools).
func EncodeIDXImages(pix []byte, n, rows, cols int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, [4]uint32{idxImagesMagic, uint32(n), uint32(rows), uint32(cols)})
	b.Write(pix)
	return b.Bytes()
}

// EncodeIDXLabels writes labels as a raw IDX file.
func EncodeIDXLabels(lab []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, [2]uint32{idxLabelsMagic, uint32(len(lab))})
	b.Write(lab)
	return b.Bytes()
}
