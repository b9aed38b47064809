package data

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

func TestDecodeMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	cases := map[string][]byte{
		"png rgb":   encodePNG(t, randRGBA(rng, 7, 5)),
		"png gray":  encodePNG(t, randGray(rng, 6, 3)),
		"jpeg rgb":  encodeJPEG(t, randRGBA(rng, 17, 9)), // odd size: chroma subsampling edges
		"jpeg gray": encodeJPEG(t, randGray(rng, 9, 4)),
	}
	for name, b := range cases {
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := stdDecode(t, b)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Decode = %dx%dx%d, differs from the stdlib reference %dx%dx%d", name, got.C, got.H, got.W, want.C, want.H, want.W)
		}
	}
	// PNG is lossless: the pixels come back exactly, in CHW order.
	m := randRGBA(rng, 3, 2)
	got, err := Decode(encodePNG(t, m))
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 2; y++ {
		for x := 0; x < 3; x++ {
			c := m.NRGBAAt(x, y)
			if got.At(0, y, x) != c.R || got.At(1, y, x) != c.G || got.At(2, y, x) != c.B {
				t.Fatalf("pixel (%d,%d): got %d,%d,%d want %v", y, x, got.At(0, y, x), got.At(1, y, x), got.At(2, y, x), c)
			}
		}
	}
}

func sameItems(t *testing.T, a, b Dataset) {
	t.Helper()
	if a.Len() != b.Len() || !reflect.DeepEqual(a.Classes(), b.Classes()) {
		t.Fatalf("len %d vs %d, classes %v vs %v", a.Len(), b.Len(), a.Classes(), b.Classes())
	}
	for i := 0; i < a.Len(); i++ {
		ma, err := a.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := b.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if a.Label(i) != b.Label(i) || !reflect.DeepEqual(ma, mb) {
			t.Fatalf("item %d (%s vs %s) differs", i, a.Source(i), b.Source(i))
		}
	}
}

func TestImageFolderDir(t *testing.T) {
	root := t.TempDir()
	files := fixtureTree(t, root)
	tr, err := OpenImageFolder(root, "train", FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cat", "dog"}; !reflect.DeepEqual(tr.Classes(), want) {
		t.Fatalf("classes %v, want %v", tr.Classes(), want)
	}
	wantRel := []string{"train/cat/a.png", "train/cat/b.jpg", "train/dog/c.png", "train/dog/sub/d.png"}
	wantLabel := []int{0, 0, 1, 1}
	wantC := []int{3, 3, 1, 3}
	if tr.Len() != len(wantRel) {
		t.Fatalf("len %d, want %d", tr.Len(), len(wantRel))
	}
	for i, rel := range wantRel {
		if got := tr.Source(i); got != filepath.Join(root, rel) {
			t.Errorf("source %d = %s, want %s", i, got, filepath.Join(root, rel))
		}
		if tr.Label(i) != wantLabel[i] {
			t.Errorf("label %d = %d, want %d", i, tr.Label(i), wantLabel[i])
		}
		m, err := tr.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if m.C != wantC[i] {
			t.Errorf("%s: C=%d, want %d", rel, m.C, wantC[i])
		}
		if want := stdDecode(t, files[rel]); !reflect.DeepEqual(m, want) {
			t.Errorf("%s: pixels differ from the stdlib decode", rel)
		}
	}
	te, err := OpenImageFolder(root, "test", FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if te.Len() != 3 || te.Label(0) != 0 || te.Label(1) != 1 || te.Label(2) != 1 {
		t.Fatalf("test split: len %d labels %v", te.Len(), Labels(te))
	}
	if m, _ := te.Image(1); m.C != 1 || m.H != 8 {
		t.Errorf("grayscale JPEG: got C=%d H=%d, want C=1 H=8", m.C, m.H)
	}
	if _, err := te.Image(3); err == nil {
		t.Error("Image(3) of a 3-item set: want an out-of-range error")
	}

	// split "" takes the root as the split folder.
	sub, err := OpenImageFolder(filepath.Join(root, "train"), "", FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, tr, sub)

	_, err = OpenImageFolder(root, "val", FolderOptions{})
	if err == nil || !strings.Contains(err.Error(), `"val"`) || !strings.Contains(err.Error(), "train") {
		t.Errorf("missing split: got %v, want an error naming the split and what is there", err)
	}
}

func TestImageFolderArchives(t *testing.T) {
	root := t.TempDir()
	fixtureTree(t, filepath.Join(root, "tree"))
	for _, split := range []string{"train", "test"} {
		dir, err := OpenImageFolder(filepath.Join(root, "tree"), split, FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, prefix string
			gz           bool
		}{
			{"plain.tar", "", false},
			{"dotted.tar", "./", false},
			{"zipped.tar.gz", "", true},
			{"nested.tgz", "mydata/", true},
		} {
			arc := filepath.Join(root, tc.name)
			tarTree(t, filepath.Join(root, "tree"), arc, tc.prefix, tc.gz)
			a, err := OpenImageFolder(arc, split, FolderOptions{})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			sameItems(t, dir, a)
			for i := 0; i < a.Len(); i++ {
				rel := strings.TrimPrefix(dir.Source(i), filepath.Join(root, "tree")+"/")
				want := arc + ":" + strings.TrimPrefix(tc.prefix, "./") + rel
				if a.Source(i) != want {
					t.Errorf("%s: source %d = %s, want %s", tc.name, i, a.Source(i), want)
				}
			}
		}
	}
	// A truncated archive names itself.
	arc := filepath.Join(root, "plain.tar")
	b, _ := os.ReadFile(arc)
	cut := filepath.Join(root, "cut.tar")
	writeFile(t, cut, b[:len(b)/2])
	if _, err := OpenImageFolder(cut, "train", FolderOptions{}); err == nil || !strings.Contains(err.Error(), cut) {
		t.Errorf("truncated tar: got %v, want an error naming %s", err, cut)
	}
}

func TestImageFolderUnlabeled(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	writeFile(t, filepath.Join(root, "u", "x.png"), encodePNG(t, randRGBA(rng, 2, 3)))
	writeFile(t, filepath.Join(root, "u", "y.jpg"), encodeJPEG(t, smoothRGBA(4, 4)))
	for _, p := range []string{root, filepath.Join(root, "u.tar")} {
		if p != root {
			tarTree(t, root, p, "", false)
		}
		ds, err := OpenImageFolder(p, "u", FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 2 || ds.Classes() != nil || ds.Label(0) != -1 || ds.Label(1) != -1 {
			t.Fatalf("%s: len %d classes %v labels %v, want 2 unlabeled", p, ds.Len(), ds.Classes(), Labels(ds))
		}
	}
	// Loose images beside class folders are ambiguous.
	writeFile(t, filepath.Join(root, "u", "cls", "z.png"), encodePNG(t, randRGBA(rng, 2, 2)))
	if _, err := OpenImageFolder(root, "u", FolderOptions{}); err == nil || !strings.Contains(err.Error(), "one layout") {
		t.Errorf("mixed layout: got %v", err)
	}
	// An empty class folder would shift the class indices.
	os.MkdirAll(filepath.Join(root, "v", "a"), 0o755)
	os.MkdirAll(filepath.Join(root, "v", "b"), 0o755)
	writeFile(t, filepath.Join(root, "v", "a", "z.png"), encodePNG(t, randRGBA(rng, 2, 2)))
	if _, err := OpenImageFolder(root, "v", FolderOptions{}); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("empty class: got %v", err)
	}
}

func TestImageFolderOptions(t *testing.T) {
	root := t.TempDir()
	fixtureTree(t, root)
	plain, err := OpenImageFolder(root, "train", FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gray, err := OpenImageFolder(root, "train", FolderOptions{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	rgb, err := OpenImageFolder(root, "train", FolderOptions{Channels: 3, Size: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < plain.Len(); i++ {
		p, _ := plain.Image(i)
		g, err := gray.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if g.C != 1 || g.H != p.H || g.W != p.W {
			t.Fatalf("Channels 1: got %dx%dx%d from %dx%dx%d", g.C, g.H, g.W, p.C, p.H, p.W)
		}
		n := p.H * p.W
		for k := 0; k < n; k++ {
			want := p.Pix[k]
			if p.C == 3 {
				v := 0.299*float64(p.Pix[k]) + 0.587*float64(p.Pix[n+k]) + 0.114*float64(p.Pix[2*n+k])
				want = uint8(v + 0.5)
			}
			if g.Pix[k] != want {
				t.Fatalf("%s pixel %d: luma %d, want %d", plain.Source(i), k, g.Pix[k], want)
			}
		}
		r, err := rgb.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if r.C != 3 || r.H != 6 || r.W != 6 {
			t.Fatalf("Channels 3 Size 6: got %dx%dx%d", r.C, r.H, r.W)
		}
		if p.C == 1 && (!bytes.Equal(r.Pix[:36], r.Pix[36:72]) || !bytes.Equal(r.Pix[:36], r.Pix[72:])) {
			t.Errorf("gray to 3 channels: channels differ")
		}
	}
	if _, err := OpenImageFolder(root, "train", FolderOptions{Channels: 2}); err == nil {
		t.Error("Channels 2: want an error")
	}
}

func TestCorruptImages(t *testing.T) {
	root := t.TempDir()
	fixtureTree(t, root)
	good := encodeJPEG(t, smoothRGBA(32, 32))
	badPath := filepath.Join(root, "train", "dog", "broken.jpg")
	writeFile(t, badPath, good[:len(good)/2])
	arc := filepath.Join(root, "all.tar")
	tarTree(t, root, arc, "", false)

	for _, p := range []string{root, arc} {
		ds, err := OpenImageFolder(p, "train", FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 5 {
			t.Fatalf("len %d, want 5", ds.Len())
		}
		src := ds.Source(2) // broken.jpg sorts before c.png
		if !strings.HasSuffix(src, "broken.jpg") {
			t.Fatalf("item 2 is %s, want broken.jpg", src)
		}
		if _, err := ds.Image(2); err == nil || !strings.Contains(err.Error(), src) {
			t.Errorf("truncated JPEG: got %v, want an error naming %s", err, src)
		}
		if _, _, err := Check(ds, false); err == nil || !strings.Contains(err.Error(), src) {
			t.Errorf("Check without skipBad: got %v, want an error naming %s", err, src)
		}
		if _, err := Cache(ds); err == nil || !strings.Contains(err.Error(), src) {
			t.Errorf("Cache: got %v, want an error naming %s", err, src)
		}
		kept, bad, err := Check(ds, true)
		if err != nil {
			t.Fatal(err)
		}
		if kept.Len() != 4 || !reflect.DeepEqual(bad, []string{src}) {
			t.Fatalf("Check skipBad: kept %d bad %v, want 4 and [%s]", kept.Len(), bad, src)
		}
		for i := 0; i < kept.Len(); i++ {
			if strings.HasSuffix(kept.Source(i), "broken.jpg") {
				t.Error("the broken file is still in the checked set")
			}
		}
	}

	// Open-time checks: an empty file, and a non-image inside an archive.
	writeFile(t, filepath.Join(root, "train", "cat", "empty.png"), nil)
	writeFile(t, filepath.Join(root, "train", "cat", "fake.jpg"), []byte("GIF89a not really"))
	tarTree(t, root, arc, "", false)
	if _, err := OpenImageFolder(root, "train", FolderOptions{}); err == nil || !strings.Contains(err.Error(), "empty.png") {
		t.Errorf("empty file: got %v", err)
	}
	ds, err := OpenImageFolder(root, "train", FolderOptions{SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Skipped()) != 1 || !strings.HasSuffix(ds.Skipped()[0], "empty.png") || ds.Len() != 6 {
		t.Errorf("dir SkipBad: skipped %v len %d", ds.Skipped(), ds.Len())
	}
	if _, err := OpenImageFolder(arc, "train", FolderOptions{}); err == nil || !strings.Contains(err.Error(), "empty.png") {
		t.Errorf("archive empty file: got %v", err)
	}
	ds, err = OpenImageFolder(arc, "train", FolderOptions{SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Skipped()) != 2 || ds.Len() != 5 {
		t.Errorf("archive SkipBad: skipped %v len %d, want the empty and the fake file", ds.Skipped(), ds.Len())
	}
}

// TestCIFAR10JPEGTar reads the project's CIFAR-10 (JPEG) archive.
func TestCIFAR10JPEGTar(t *testing.T) {
	arc := filepath.Join(sharedData(), "cifar10-jpg.tar")
	if _, err := os.Stat(arc); err != nil {
		testenv.Skip(t, testenv.SharedDataReq, "CIFAR-10 (JPEG) archive absent (%v); set SELFSUP_DATA to the folder holding cifar10-jpg.tar", err)
	}
	for split, per := range map[string]int{"train": 5000, "test": 1000} {
		ds, err := OpenImageFolder(arc, split, FolderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ds.Classes(), CIFAR10Classes()) {
			t.Fatalf("%s classes %v, want %v", split, ds.Classes(), CIFAR10Classes())
		}
		if ds.Len() != 10*per {
			t.Fatalf("%s: %d images, want %d", split, ds.Len(), 10*per)
		}
		count := make([]int, 10)
		for _, l := range Labels(ds) {
			count[l]++
		}
		for c, n := range count {
			if n != per {
				t.Errorf("%s class %s: %d images, want %d", split, CIFAR10Classes()[c], n, per)
			}
		}
		if !strings.HasSuffix(ds.Source(0), ":"+split+"/airplane/0000.jpg") {
			t.Errorf("first %s item %s", split, ds.Source(0))
		}
		check := Dataset(ds)
		if testing.Short() {
			check = Subset(ds, []int{0, 1, ds.Len() / 2, ds.Len() - 1})
		}
		for _, i := range []int{0, check.Len() - 1} {
			m, err := check.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			if m.C != 3 || m.H != 32 || m.W != 32 {
				t.Fatalf("%s: %dx%dx%d, want 3x32x32", check.Source(i), m.C, m.H, m.W)
			}
		}
		if _, bad, err := Check(check, false); err != nil || len(bad) != 0 {
			t.Fatalf("%s: Check: %v %v", split, bad, err)
		}
	}
}

// TestOpenImageFiles: a file list gives the items of the flat folder
// holding them, unlabelled, in the list's order, decoded the same way.
func TestOpenImageFiles(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []uint8{10, 200, 90} {
		img := image.NewRGBA(image.Rect(0, 0, 5, 4))
		for k := range img.Pix {
			img.Pix[k] = c + uint8(k)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.png", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	folder, err := OpenImageFolder(dir, "", FolderOptions{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join(dir, "2.png"), filepath.Join(dir, "0.png")}
	files, err := OpenImageFiles(paths, FolderOptions{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range []int{2, 0} {
		a, err := files.Image(k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := folder.Image(want)
		if files.Source(k) != folder.Source(want) || files.Label(k) != -1 || !bytes.Equal(a.Pix, b.Pix) || a.H != 3 {
			t.Errorf("item %d: %s label %d %dx%d; want %s as the folder decodes it", k, files.Source(k), files.Label(k), a.H, a.W, folder.Source(want))
		}
	}
	// A Read function replaces the file system: names need not exist, and
	// its errors and the limit it is given reach Image.
	blob, err := os.ReadFile(filepath.Join(dir, "2.png"))
	if err != nil {
		t.Fatal(err)
	}
	var gotLimit int64
	read := func(name string, limit int64) ([]byte, error) {
		gotLimit = limit
		if name != "mem://bucket/a.png" {
			return nil, fmt.Errorf("%s: no such object", name)
		}
		return blob, nil
	}
	remote, err := OpenImageFiles([]string{"mem://bucket/a.png", "mem://bucket/b.png"}, FolderOptions{Size: 3, MaxMember: 1234, Read: read})
	if err != nil {
		t.Fatal(err)
	}
	a, err := remote.Image(0)
	b, _ := folder.Image(2)
	if err != nil || !bytes.Equal(a.Pix, b.Pix) || gotLimit != 1234 {
		t.Errorf("through Read: %v, same pixels %v, limit %d", err, bytes.Equal(a.Pix, b.Pix), gotLimit)
	}
	if _, err := remote.Image(1); err == nil || !strings.Contains(err.Error(), "mem://bucket/b.png: no such object") {
		t.Errorf("a failing Read: %v", err)
	}
	for _, bad := range [][]string{nil, {filepath.Join(dir, "notes.txt")}} {
		if _, err := OpenImageFiles(bad, FolderOptions{}); err == nil {
			t.Errorf("OpenImageFiles(%v) succeeded", bad)
		}
	}
}
