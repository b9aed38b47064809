package data

import (
	"fmt"
	"io"
)

// UniformChannels returns ds unchanged when all its images have the same
// number of channels, else ds with every image converted to 3 channels (a
// folder of photos with the odd grayscale one). It decodes every image
// once, so call it on a cached set; the first error is returned.
func UniformChannels(ds Dataset) (Dataset, error) {
	seen := [4]bool{}
	if c, ok := ds.(*cached); ok {
		for _, m := range c.imgs {
			if m.C > 0 && m.C < 4 {
				seen[m.C] = true
			}
		}
	} else {
		for i := 0; i < ds.Len(); i++ {
			m, err := ds.Image(i)
			if err != nil {
				return nil, err
			}
			if m.C > 0 && m.C < 4 {
				seen[m.C] = true
			}
		}
	}
	if seen[1] && seen[3] {
		return Convert(ds, 3, 0), nil
	}
	return ds, nil
}

// SkipBad decodes every image of ds once (see Check) and returns the ones
// that decode, writing to w how many were skipped and the first of them;
// it fails only when none decodes. The indices of the result are those of
// the good images in order, so features and labels stay aligned.
func SkipBad(ds Dataset, w io.Writer) (Dataset, error) {
	good, bad, err := Check(ds, true)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 && w != nil {
		fmt.Fprintf(w, "skipped %d images that failed to decode (first: %s)\n", len(bad), bad[0])
	}
	return good, nil
}
