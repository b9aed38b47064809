package export

import (
	"strconv"
	"strings"
)

// Metadata keys written into ModelProto.metadata_props. Consumers (the
// runtime, the feature server, eval) read preprocessing from them, so a
// model file is self-describing.
const (
	// KeyArch is the registered architecture name, e.g. "resnet18c".
	KeyArch = "selfsup.arch"
	// KeyTask is the pretext task the backbone was trained on, e.g. "jigsaw".
	KeyTask = "selfsup.task"
	// KeyInputSize is the square input size in pixels the backbone was
	// trained at (decimal integer).
	KeyInputSize = "selfsup.input_size"
	// KeyMean is the per-channel normalisation mean, comma-separated floats
	// in channel order, applied to pixels scaled to [0, 1].
	KeyMean = "selfsup.mean"
	// KeyStd is the per-channel normalisation standard deviation, in the
	// same form as KeyMean.
	KeyStd = "selfsup.std"
	// KeyLayout is the input tensor layout; always "NCHW"
	// ([batch, channels, height, width]).
	KeyLayout = "selfsup.layout"
	// KeyConfigHash identifies the resolved training config.
	KeyConfigHash = "selfsup.config_hash"
	// KeyVersion is the selfsup version that wrote the model.
	KeyVersion = "selfsup.version"
	// KeyBNRecalibrated is "true" when the batch-norm running statistics
	// were re-estimated on whole images before folding (export --bn-data).
	KeyBNRecalibrated = "selfsup.bn_recalibrated"
	// KeyInputSpace, when present, is what the input holds of an image:
	// "lab-l" (data.SpaceLabL) is the CIE lightness L*/100 of an RGB
	// image, one channel (colorization backbones); "lab" (data.SpaceLab)
	// its L*, a* and b* over 100, three channels (split-brain backbones);
	// consumers decode RGB and convert. Absent: the image's channels as
	// they are.
	KeyInputSpace = "selfsup.input_space"
)

// Layout is the only input layout the exporter writes.
const Layout = "NCHW"

// builtKeys are the metadata entries Build derives from the spec and the
// options itself; the caller may repeat them only with the same values.
var builtKeys = []string{KeyArch, KeyInputSize, KeyLayout}

// Metadata assembles the metadata entries a caller passes in
// Options.Metadata. Empty strings and nil slices are left out, so a caller
// fills what it knows. mean and std are written as comma-separated floats
// with the shortest representation that round-trips through float32.
func Metadata(arch, task string, inputSize int, mean, std []float32, configHash, version string) map[string]string {
	m := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put(KeyArch, arch)
	put(KeyTask, task)
	if inputSize > 0 {
		m[KeyInputSize] = strconv.Itoa(inputSize)
	}
	put(KeyMean, FormatFloats(mean))
	put(KeyStd, FormatFloats(std))
	m[KeyLayout] = Layout
	put(KeyConfigHash, configHash)
	put(KeyVersion, version)
	return m
}

// FormatFloats writes v as comma-separated floats ("0.485,0.456,0.406"),
// the form of KeyMean and KeyStd.
func FormatFloats(v []float32) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return strings.Join(s, ",")
}

// ParseFloats reads the form FormatFloats writes. An empty string gives nil.
func ParseFloats(s string) ([]float32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]float32, len(parts))
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, errorf("parse floats %q: item %d: %v", s, i, err)
		}
		out[i] = float32(f)
	}
	return out, nil
}
