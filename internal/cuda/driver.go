package cuda

import "fmt"

// Open finds the first GPU.
func Open() (*Device, error) {
	return nil, fmt.Errorf("%w: the driver binding is not written yet", ErrNoLibrary)
}
