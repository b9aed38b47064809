package data

import (
	"image"
	"image/color"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseYOLO(t *testing.T) {
	boxes, err := ParseYOLO("a.txt", []byte("0 0.5 0.5 0.5 0.25\n\n3 0.1 0.2 0.2 0.4\n"), 200, 100, 80)
	if err != nil {
		t.Fatal(err)
	}
	want := []Box{{Class: 0, X0: 50, Y0: 37.5, X1: 150, Y1: 62.5}, {Class: 3, X0: 0, Y0: 0, X1: 40, Y1: 40}}
	if len(boxes) != 2 {
		t.Fatalf("got %d boxes, want 2", len(boxes))
	}
	for i, b := range boxes {
		w := want[i]
		if b.Class != w.Class || math.Abs(b.X0-w.X0) > 1e-9 || math.Abs(b.Y0-w.Y0) > 1e-9 || math.Abs(b.X1-w.X1) > 1e-9 || math.Abs(b.Y1-w.Y1) > 1e-9 {
			t.Errorf("box %d = %+v, want %+v", i, b, w)
		}
	}
	for _, c := range []struct{ text, want string }{
		{"0 0.5 0.5 0.5\n", "a.txt line 1: 4 fields, want 5"},
		{"0 0.5 0.5 0.5 0.5\n1 0.5 zz 0.5 0.5\n", `a.txt line 2: field 3 is "zz"`},
		{"\n\n80 0.5 0.5 0.5 0.5\n", `a.txt line 3: class "80", want an integer in [0, 80)`},
		{"-1 0.5 0.5 0.5 0.5\n", `line 1: class "-1"`},
		{"0 1.5 0.5 0.5 0.5\n", `line 1: field 2 is "1.5", want a number in [0, 1]`},
		{"0 0.5 0.5 0 0.5\n", "line 1: box of width 0"},
		{"0 0.5 0.5 NaN 0.5\n", `field 4 is "NaN"`},
	} {
		_, err := ParseYOLO("a.txt", []byte(c.text), 10, 10, 80)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseYOLO(%q) error %v, want it to contain %q", c.text, err, c.want)
		}
	}
}

const vocXML = `<annotation>
  <filename>img1.png</filename>
  <size><width>20</width><height>10</height><depth>3</depth></size>
  <object><name>tree</name><difficult>0</difficult>
    <bndbox><xmin>2</xmin><ymin>3</ymin><xmax>8</xmax><ymax>9</ymax></bndbox></object>
  <object><name>car</name><difficult>1</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>10</ymax></bndbox></object>
</annotation>
`

func TestParseVOC(t *testing.T) {
	a, err := ParseVOC("a.xml", []byte(vocXML))
	if err != nil {
		t.Fatal(err)
	}
	if a.Filename != "img1.png" || a.W != 20 || a.H != 10 || len(a.Boxes) != 2 || a.Names[0] != "tree" || a.Names[1] != "car" {
		t.Fatalf("got %+v", a)
	}
	if b := a.Boxes[0]; b.X0 != 1 || b.Y0 != 2 || b.X1 != 8 || b.Y1 != 9 || b.Difficult {
		t.Errorf("box 0 = %+v, want [1,2,8,9] not difficult (1-based xmin-1)", b)
	}
	if !a.Boxes[1].Difficult {
		t.Error("box 1 not difficult")
	}
	for _, c := range []struct{ text, want string }{
		{strings.Replace(vocXML, "<xmax>8</xmax>", "<xmax>eight</xmax>", 1), `a.xml line 4: object's <xmax> is "eight"`},
		{strings.Replace(vocXML, "</annotation>", "", 1), "a.xml line 9: malformed XML"},
		{strings.Replace(vocXML, "<width>20</width>", "<width>x</width>", 1), `a.xml line 3: <width> is "x"`},
		{strings.Replace(vocXML, "<xmax>8</xmax>", "<xmax>1</xmax>", 1), "a.xml line 4: object \"tree\" has xmax 1 < xmin 2"},
		{"<foo/>", "not a VOC annotation"},
	} {
		_, err := ParseVOC("a.xml", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
}

const cocoJSON = `{"images": [{"id": 7, "file_name": "img2.png", "width": 16, "height": 12}],
 "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [1, 2, 3, 4], "iscrowd": 0},
                 {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 16, 12], "iscrowd": true}],
 "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]}`

func TestParseCOCO(t *testing.T) {
	f, err := ParseCOCO("i.json", []byte(cocoJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Images) != 1 || len(f.Annotations) != 2 || f.Annotations[1].IsCrowd != 1 {
		t.Fatalf("got %+v", f)
	}
	for _, c := range []struct{ text, want string }{
		{strings.Replace(cocoJSON, `"bbox": [1, 2, 3, 4]`, `"bbox": [1, 2, 3]`, 1), "annotations[0] (id 1) has a bbox of 3 numbers"},
		{strings.Replace(cocoJSON, `"image_id": 7, "category_id": 3`, `"image_id": 9, "category_id": 3`, 1), "annotations[1] (id 2) is on image_id 9"},
		{strings.Replace(cocoJSON, `"category_id": 18`, `"category_id": 5`, 1), "has category_id 5"},
		{strings.Replace(cocoJSON, `"bbox": [1, 2, 3, 4], "iscrowd": 0}`, `"bbox": [1, 2, 3, 4], "iscrowd": 0`, 1), "i.json line 3: malformed JSON"},
		{strings.Replace(cocoJSON, `"width": 16`, `"width": "16"`, 1), "i.json line 1: images.width is a JSON string"},
		{strings.Replace(cocoJSON, `[1, 2, 3, 4]`, `[1, 2, -3, 4]`, 1), "negative width"},
	} {
		_, err := ParseCOCO("i.json", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
}

func TestParseClassNames(t *testing.T) {
	y := "# c\npath: .\nnames:\n  0: person\n  1: 'traffic light'\nclasses:\n  0: unlabeled\n  13: stop sign\nflow: [a, b]\n"
	n, err := ParseClassNames("c.yaml", []byte(y), "names")
	if err != nil || len(n) != 2 || n[1] != "traffic light" {
		t.Fatalf("names %v, %v", n, err)
	}
	c, err := ParseClassNames("c.yaml", []byte(y), "classes")
	if err != nil || c[13] != "stop sign" || len(c) != 2 {
		t.Fatalf("classes %v, %v", c, err)
	}
	if f, _ := ParseClassNames("c.yaml", []byte(y), "flow"); len(f) != 2 || f[1] != "b" {
		t.Errorf("flow list %v", f)
	}
	if _, err := ParseClassNames("c.yaml", []byte("names:\n  zero: person\n"), "names"); err == nil || !strings.Contains(err.Error(), "c.yaml line 2") {
		t.Errorf("error %v, want line 2", err)
	}
}

// maskPNG is a w x h class-index PNG with class k in column x%3 == k-ish.
func maskPNG(t *testing.T, w, h int) []byte {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i % 3 * 5)
	}
	return encodePNG(t, m)
}

// annotatedTree writes a YOLO + masks layout (as COCO128's) under root.
func annotatedTree(t *testing.T, root string, labels map[string]string) {
	rng := rand.New(rand.NewSource(2))
	writeFile(t, filepath.Join(root, "od/config.yaml"), []byte("names:\n  0: person\n  1: dog\n"))
	writeFile(t, filepath.Join(root, "seg/config.yaml"), []byte("classes:\n  0: unlabeled\n  5: person\n  10: dog\n"))
	for _, n := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(root, "images/train/"+n+".png"), encodePNG(t, randRGBA(rng, 8, 6)))
	}
	writeFile(t, filepath.Join(root, "images/val/d.jpg"), encodeJPEG(t, smoothRGBA(8, 6)))
	writeFile(t, filepath.Join(root, "seg/masks/train/a.png"), maskPNG(t, 8, 6))
	writeFile(t, filepath.Join(root, "seg/masks/train/c.png"), maskPNG(t, 7, 6))
	for p, s := range labels {
		writeFile(t, filepath.Join(root, "od/labels/"+p), []byte(s))
	}
}

func TestOpenAnnotatedYOLO(t *testing.T) {
	root := t.TempDir()
	good := map[string]string{"train/a.txt": "1 0.5 0.5 0.5 0.5\n", "train/b.txt": "", "train/z.txt": "0 0.5 0.5 0.5 0.5\n", "val/d.txt": "0 0.5 0.5 1 1\n"}
	annotatedTree(t, root, good)
	tarPath := filepath.Join(t.TempDir(), "set.tar")
	tarTree(t, root, tarPath, "top/", false)
	for _, spec := range []string{root, tarPath} {
		a, err := OpenAnnotated(spec, "train", AnnotatedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a.Len() != 3 || len(a.WithBoxes()) != 2 || len(a.WithMasks()) != 2 || len(a.Orphans) != 1 {
			t.Fatalf("%s: %d items, %d labelled, %d masks, orphans %v; want 3, 2, 2, 1", spec, a.Len(), len(a.WithBoxes()), len(a.WithMasks()), a.Orphans)
		}
		if len(a.BoxClasses) != 2 || a.BoxClasses[1] != "dog" || a.MaskClasses[10] != "dog" {
			t.Errorf("classes %v, mask classes %v", a.BoxClasses, a.MaskClasses)
		}
		it := a.Items[0]
		if it.W != 8 || it.H != 6 || len(it.Boxes) != 1 || it.Boxes[0] != (Box{Class: 1, X0: 2, Y0: 1.5, X1: 6, Y1: 4.5}) {
			t.Errorf("item 0 %+v", it)
		}
		m, err := a.Mask(0)
		if err != nil || m.W != 8 || m.H != 6 || m.Pix[1] != 5 || m.Pix[2] != 10 {
			t.Errorf("mask %+v, %v", m, err)
		}
		if _, err := a.Mask(2); err == nil || !strings.Contains(err.Error(), "c.png is 7 x 6, its image") {
			t.Errorf("mask of the wrong size: error %v", err)
		}
		if img, err := a.Image(1); err != nil || img.W != 8 || img.H != 6 {
			t.Errorf("image 1: %v", err)
		}
		v, err := OpenAnnotated(spec, "val", AnnotatedOptions{})
		if err != nil || v.Len() != 1 || len(v.Items[0].Boxes) != 1 {
			t.Fatalf("val: %v", err)
		}
	}
	bad := map[string]string{"train/a.txt": "1 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5\n", "train/b.txt": ""}
	root2 := t.TempDir()
	annotatedTree(t, root2, bad)
	_, err := OpenAnnotated(root2, "train", AnnotatedOptions{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("labels", "train", "a.txt")+" line 2: 4 fields, want 5") {
		t.Fatalf("error %v, want the file and line 2", err)
	}
	a, err := OpenAnnotated(root2, "train", AnnotatedOptions{SkipBad: true})
	if err != nil || a.Len() != 2 || len(a.Skipped) != 1 || !strings.Contains(a.Skipped[0], "a.txt") {
		t.Fatalf("--skip-bad: %v, skipped %v", err, a)
	}
	if _, err := OpenAnnotated(root2, "nosuch", AnnotatedOptions{}); err == nil || !strings.Contains(err.Error(), `no images in split "nosuch"`) {
		t.Errorf("missing split: %v", err)
	}
}

func TestOpenAnnotatedVOCAndCOCO(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	writeFile(t, filepath.Join(root, "imgs/img1.png"), encodePNG(t, randRGBA(rng, 20, 10)))
	writeFile(t, filepath.Join(root, "imgs/img2.png"), encodePNG(t, randRGBA(rng, 16, 12)))
	writeFile(t, filepath.Join(root, "ann/img1.xml"), []byte(vocXML))
	a, err := OpenAnnotated(root, "", AnnotatedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 2 || !a.Items[0].Labelled || a.Items[1].Labelled || len(a.BoxClasses) != 2 || a.BoxClasses[0] != "car" || a.Items[0].Boxes[0].Class != 1 {
		t.Fatalf("VOC: %+v classes %v", a.Items, a.BoxClasses)
	}
	writeFile(t, filepath.Join(root, "ann/img3.xml"), []byte(strings.Replace(vocXML, "<ymax>9</ymax>", "<ymax></ymax>", 1)))
	if _, err := OpenAnnotated(root, "", AnnotatedOptions{}); err == nil || !strings.Contains(err.Error(), "img3.xml line 4") {
		t.Fatalf("bad VOC: %v", err)
	}
	if a, err = OpenAnnotated(root, "", AnnotatedOptions{SkipBad: true}); err != nil || len(a.Skipped) != 1 {
		t.Fatalf("bad VOC skipped: %v", err)
	}

	root = t.TempDir()
	writeFile(t, filepath.Join(root, "images/val/img2.png"), encodePNG(t, randRGBA(rng, 16, 12)))
	writeFile(t, filepath.Join(root, "annotations/instances_val.json"), []byte(cocoJSON))
	a, err = OpenAnnotated(root, "val", AnnotatedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	it := a.Items[0]
	if len(a.BoxClasses) != 2 || a.BoxClasses[0] != "car" || len(it.Boxes) != 2 || it.Boxes[0] != (Box{Class: 1, X0: 1, Y0: 2, X1: 4, Y1: 6}) || !it.Boxes[1].Difficult {
		t.Fatalf("COCO: %+v classes %v", it, a.BoxClasses)
	}
}

func TestDecodeMask(t *testing.T) {
	pal := image.NewPaletted(image.Rect(0, 0, 3, 2), color.Palette{color.Black, color.White, color.Gray{9}})
	pal.Pix = []uint8{0, 1, 2, 2, 1, 0}
	m, err := DecodeMask("p.png", encodePNG(t, pal), 0)
	if err != nil || m.Pix[2] != 2 || m.Pix[4] != 1 {
		t.Fatalf("paletted mask %v, %v", m, err)
	}
	if _, err := DecodeMask("rgb.png", encodePNG(t, randRGBA(rand.New(rand.NewSource(1)), 3, 3)), 0); err == nil || !strings.Contains(err.Error(), "rgb.png is a *image.RGBA PNG, want 8-bit") {
		t.Errorf("RGB mask: %v", err)
	}
	if _, err := DecodeMask("j.png", encodeJPEG(t, smoothRGBA(4, 4)), 0); err == nil || !strings.Contains(err.Error(), "is jpeg") {
		t.Errorf("JPEG mask: %v", err)
	}
	if _, err := DecodeMask("big.png", maskPNG(t, 10, 10), 50); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("mask over the pixel limit: %v", err)
	}
}
