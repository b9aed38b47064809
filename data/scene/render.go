package scene

import (
	"fmt"
	"math"
)

// Options configure Render.
type Options struct {
	// Supersample n >= 2 shades n x n sub-pixel rays (an ordered grid)
	// and averages them for the colour of every pixel on an instance
	// boundary (a 4-neighbour with another id), where a single ray would
	// leave jagged silhouettes; 0 or 1 shades the pixel centre only.
	// DefaultOptions: 2.
	Supersample int
	// All supersamples every pixel, not only the boundary ones (textures
	// then alias less, at n² the cost).
	All bool
	// DepthJump is the relative depth error above which two neighbouring
	// pixels of one instance are a depth discontinuity (see Render);
	// 0: 0.1.
	DepthJump float64
}

// DefaultOptions supersamples boundary pixels 2 x 2.
func DefaultOptions() Options { return Options{Supersample: 2, DepthJump: 0.1} }

// Render is a scene drawn at Size x Size pixels: row-major planes, row 0
// at the top. Every label is taken at the pixel centre's ray.
type Render struct {
	Size int
	// RGB holds the colour [3, Size, Size], sRGB-encoded in [0, 1] as a
	// photograph's (Lambert shading of the texture's linear albedo under
	// the ambient and directional lights, shadowed, averaged in linear
	// light over a pixel's sub-samples, then encoded and clipped).
	RGB []float32
	// Depth holds each pixel's depth [Size, Size]: the distance of the
	// surface it sees along the camera axis (not along the ray), in world
	// units; MaxDepth where the ray hits nothing.
	Depth []float32
	// Normal holds the surface normal [3, Size, Size] in camera
	// coordinates (x right, y up, z along the viewing axis, away from the
	// camera), unit length, on the side the pixel's ray comes from (n ·
	// (u, v, 1) <= 0 for the ray's camera direction (u, v, 1); z < 0 for
	// surfaces seen head-on); (0, 0, -1) where the ray hits nothing.
	Normal []float32
	// ID holds the instance each pixel sees [Size, Size] (Object.ID; 0:
	// nothing).
	ID []int32
	// Contour is 1 on instance contours [Size, Size], else 0: a pixel is
	// a contour pixel when one of its 4-neighbours sees another instance
	// or lies across a depth discontinuity, and the pixel is the nearer of
	// the two (the occluding side, so a silhouette is drawn on the object).
	// Two neighbours of one instance are across a discontinuity when
	// neither one's tangent plane predicts the other's depth within
	// DepthJump (relative).
	Contour []uint8
}

// hit is a ray's nearest intersection.
type hit struct {
	t      float64 // ray parameter: the camera-axis depth for camera rays
	obj    int     // index into Scene.Objects, -1 none
	normal Vec     // world, unit, facing the ray
	local  Vec     // hit point in the object's local coordinates
}

const rayEps = 1e-7

// bound2 is the squared radius of a sphere around a box's or cylinder's
// centre that holds it.
func (obj *Object) bound2() float64 {
	if obj.Kind == Cylinder {
		return obj.Radius*obj.Radius + obj.Half[1]*obj.Half[1]
	}
	return obj.Half.Dot(obj.Half)
}

// Faces hit (hitT's face): a box's axis 0-2, a cylinder's side or cap.
const (
	faceSide int8 = 0
	faceCap  int8 = 1
)

// hitT returns the nearest t > tmin at which the ray o + t d meets obj,
// and for boxes and cylinders which face it meets (see surface).
func (obj *Object) hitT(o, d Vec, tmin float64) (t float64, face int8, ok bool) {
	rel := o.Sub(obj.Center)
	switch obj.Kind {
	case Sphere:
		a, b, c := d.Dot(d), rel.Dot(d), rel.Dot(rel)-obj.Radius*obj.Radius
		disc := b*b - a*c
		if disc < 0 {
			return 0, 0, false
		}
		sq := math.Sqrt(disc)
		if t = (-b - sq) / a; t > tmin {
			return t, 0, true
		}
		if t = (-b + sq) / a; t > tmin {
			return t, 0, true
		}
		return 0, 0, false
	case Plane:
		n := obj.Frame[1]
		if dy := d.Dot(n); dy != 0 {
			if t = -rel.Dot(n) / dy; t > tmin {
				return t, 0, true
			}
		}
		return 0, 0, false
	}
	// Most rays miss the bounding sphere.
	if b, c := rel.Dot(d), rel.Dot(rel)-obj.bound2(); c > 0 && (b > 0 || b*b < d.Dot(d)*c) {
		return 0, 0, false
	}
	f := &obj.Frame
	ol := Vec{rel.Dot(f[0]), rel.Dot(f[1]), rel.Dot(f[2])}
	dl := Vec{d.Dot(f[0]), d.Dot(f[1]), d.Dot(f[2])}
	if obj.Kind == Box {
		t0, t1 := math.Inf(-1), math.Inf(1)
		ax0, ax1 := int8(-1), int8(-1)
		for i := 0; i < 3; i++ {
			h := obj.Half[i]
			if dl[i] == 0 {
				if ol[i] < -h || ol[i] > h {
					return 0, 0, false
				}
				continue
			}
			ta, tb := (-h-ol[i])/dl[i], (h-ol[i])/dl[i]
			if ta > tb {
				ta, tb = tb, ta
			}
			if ta > t0 {
				t0, ax0 = ta, int8(i)
			}
			if tb < t1 {
				t1, ax1 = tb, int8(i)
			}
		}
		switch {
		case t0 > t1:
			return 0, 0, false
		case t0 > tmin && ax0 >= 0:
			return t0, ax0, true
		case t1 > tmin && ax1 >= 0:
			return t1, ax1, true
		}
		return 0, 0, false
	}
	// Cylinder: the side x² + z² = r² for |y| <= h, then the caps.
	r, h := obj.Radius, obj.Half[1]
	t = math.Inf(1)
	if a := dl[0]*dl[0] + dl[2]*dl[2]; a > 0 {
		b, c := ol[0]*dl[0]+ol[2]*dl[2], ol[0]*ol[0]+ol[2]*ol[2]-r*r
		if disc := b*b - a*c; disc >= 0 {
			sq := math.Sqrt(disc)
			if ts := (-b - sq) / a; ts > tmin && math.Abs(ol[1]+ts*dl[1]) <= h {
				t, face = ts, faceSide
			} else if ts := (-b + sq) / a; ts > tmin && math.Abs(ol[1]+ts*dl[1]) <= h {
				t, face = ts, faceSide
			}
		}
	}
	if dl[1] != 0 {
		for _, cy := range [2]float64{-h, h} {
			if tc := (cy - ol[1]) / dl[1]; tc > tmin && tc < t {
				if px, pz := ol[0]+tc*dl[0], ol[2]+tc*dl[2]; px*px+pz*pz <= r*r {
					t, face = tc, faceCap
				}
			}
		}
	}
	return t, face, !math.IsInf(t, 1)
}

// surface returns the normal (world, unit, facing the ray) and the local
// coordinates of the point o + t d of obj, which hitT found on face.
func (obj *Object) surface(o, d Vec, t float64, face int8) (n, local Vec) {
	f := &obj.Frame
	p := o.Sub(obj.Center).AddScaled(d, t)
	local = Vec{p.Dot(f[0]), p.Dot(f[1]), p.Dot(f[2])}
	switch obj.Kind {
	case Sphere:
		n = p.Scale(1 / obj.Radius)
	case Plane:
		n, local[1] = f[1], 0
	default:
		var nl Vec
		switch {
		case obj.Kind == Box:
			nl[face] = math.Copysign(1, local[face])
		case face == faceCap:
			nl[1] = math.Copysign(1, local[1])
		default:
			nl = Vec{local[0] / obj.Radius, 0, local[2] / obj.Radius}
		}
		n = f[0].Scale(nl[0]).AddScaled(f[1], nl[1]).AddScaled(f[2], nl[2])
	}
	if n.Dot(d) > 0 {
		n = n.Scale(-1)
	}
	return n, local
}

// cast returns the nearest hit of the ray o + t d, t > tmin. With
// footprints (camera rays), only the objects whose footprint holds pixel
// (px, py) are tested.
func (s *Scene) cast(o, d Vec, tmin float64, footprints []footprint, px, py int) hit {
	h := hit{t: math.Inf(1), obj: -1}
	var face int8
	for i := range s.Objects {
		if footprints != nil && !footprints[i].holds(px, py) {
			continue
		}
		if t, fc, ok := s.Objects[i].hitT(o, d, tmin); ok && t < h.t {
			h.t, h.obj, face = t, i, fc
		}
	}
	if h.obj >= 0 {
		h.normal, h.local = s.Objects[h.obj].surface(o, d, h.t, face)
	}
	return h
}

// occluded reports whether a primitive other than object skip blocks the
// ray from p toward the directional light l. Planes cast no shadows (the
// lights shine from the camera's side of the walls, and nothing lies
// under the ground).
func (s *Scene) occluded(p, l Vec, skip int) bool {
	for i := range s.Objects {
		if i == skip || s.Objects[i].Kind == Plane {
			continue
		}
		if _, _, ok := s.Objects[i].hitT(p, l, rayEps); ok {
			return true
		}
	}
	return false
}

// footprint is the rectangle of pixels [x0, x1] x [y0, y1] outside which
// no camera ray meets an object.
type footprint struct{ x0, x1, y0, y1 int }

func (f footprint) holds(x, y int) bool { return x >= f.x0 && x <= f.x1 && y >= f.y0 && y <= f.y1 }

// footprints bounds every object's image at size pixels: a conservative
// rectangle around the projection of its bounding sphere, one pixel
// wider on every side; the whole image for planes and for objects that
// reach within 0.05 units of the camera plane.
func (s *Scene) footprints(size int) []footprint {
	all := footprint{0, size - 1, 0, size - 1}
	cam := &s.Camera
	h := math.Tan(cam.FOV / 2)
	out := make([]footprint, len(s.Objects))
	for i := range s.Objects {
		obj := &s.Objects[i]
		out[i] = all
		var rho float64
		switch obj.Kind {
		case Plane:
			continue
		case Sphere:
			rho = obj.Radius
		default:
			rho = math.Sqrt(obj.bound2())
		}
		rel := obj.Center.Sub(cam.Pos)
		cx, cy, cz := rel.Dot(cam.Right), rel.Dot(cam.Up), rel.Dot(cam.Forward)
		if cz-rho < 0.05 {
			continue
		}
		// The largest and smallest x/z over the sphere, bounded.
		span := func(c float64) (lo, hi float64) {
			if lo = (c - rho) / (cz - rho); c-rho > 0 {
				lo = (c - rho) / (cz + rho)
			}
			if hi = (c + rho) / (cz - rho); c+rho < 0 {
				hi = (c + rho) / (cz + rho)
			}
			return lo, hi
		}
		ulo, uhi := span(cx)
		vlo, vhi := span(cy)
		pix := func(u float64) int { // image u (or -v) to a pixel column (row)
			return int(math.Floor((u/h + 1) / 2 * float64(size)))
		}
		out[i] = footprint{max(0, pix(ulo)-1), min(size-1, pix(uhi)+1), max(0, pix(-vhi)-1), min(size-1, pix(-vlo)+1)}
	}
	return out
}

// albedo evaluates a texture at local coordinates p.
func (tx *Texture) albedo(p Vec) Vec {
	switch tx.Kind {
	case Checker:
		k := int64(math.Floor(p[0]/tx.Scale)) + int64(math.Floor(p[1]/tx.Scale)) + int64(math.Floor(p[2]/tx.Scale))
		if k&1 != 0 {
			return tx.B
		}
	case Stripes:
		if int64(math.Floor(p.Dot(tx.Dir)/tx.Scale))&1 != 0 {
			return tx.B
		}
	case Noise:
		q := p.Scale(1 / tx.Scale)
		w := 0.65*valueNoise(q, tx.Seed) + 0.35*valueNoise(q.Scale(2.03), tx.Seed^0x5bd1e995)
		return tx.A.Scale(1-w).AddScaled(tx.B, w)
	}
	return tx.A
}

// valueNoise is smooth noise in [0, 1]: random values at the integer
// lattice (a hash of the cell and seed), interpolated with smoothstep.
func valueNoise(p Vec, seed uint64) float64 {
	fx, fy, fz := math.Floor(p[0]), math.Floor(p[1]), math.Floor(p[2])
	x, y, z := int64(fx), int64(fy), int64(fz)
	u, v, w := smooth(p[0]-fx), smooth(p[1]-fy), smooth(p[2]-fz)
	at := func(i, j, k int64) float64 {
		h := splitmix(seed ^ uint64(i)*0x9e3779b97f4a7c15 ^ uint64(j)*0xc2b2ae3d27d4eb4f ^ uint64(k)*0x165667b19e3779f9)
		return float64(h>>11) / (1 << 53)
	}
	lerp := func(a, b, t float64) float64 { return a + (b-a)*t }
	return lerp(
		lerp(lerp(at(x, y, z), at(x+1, y, z), u), lerp(at(x, y+1, z), at(x+1, y+1, z), u), v),
		lerp(lerp(at(x, y, z+1), at(x+1, y, z+1), u), lerp(at(x, y+1, z+1), at(x+1, y+1, z+1), u), v), w)
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }

// shade is the linear colour a camera ray o + t d sees: the background on
// a miss, else albedo x (ambient + Σ lights x max(0, n·l), each light
// blocked in shadow).
func (s *Scene) shade(o, d Vec, h hit) Vec {
	if h.obj < 0 {
		return s.Background
	}
	obj := &s.Objects[h.obj]
	light := s.Ambient
	p := o.AddScaled(d, h.t).AddScaled(h.normal, 1e-6)
	for _, l := range s.Lights {
		c := h.normal.Dot(l.Dir)
		if c <= 0 || s.Shadows && s.occluded(p, l.Dir, h.obj) {
			continue
		}
		light = light.AddScaled(l.Color, c)
	}
	return obj.Tex.albedo(h.local).Mul(light)
}

// encode turns a linear colour into sRGB in [0, 1] (the transfer function
// of IEC 61966-2-1: what 8-bit photographs store), clipped; interpolated
// in a table of srgbSteps+1 values, within 2e-4 of the formula (well
// under the 1/255 of an 8-bit pixel).
func encode(c Vec) Vec {
	for i, v := range c {
		switch {
		case !(v > 0):
			c[i] = 0
		case v >= 1:
			c[i] = 1
		default:
			x := v * srgbSteps
			k := int(x)
			c[i] = srgbTable[k] + (srgbTable[k+1]-srgbTable[k])*(x-float64(k))
		}
	}
	return c
}

const srgbSteps = 4096

var srgbTable = func() (t [srgbSteps + 1]float64) {
	for k := range t {
		t[k] = srgb(float64(k) / srgbSteps)
	}
	return
}()

// srgb is the sRGB transfer function of a linear value in [0, 1].
func srgb(v float64) float64 {
	if v <= 0.0031308 {
		return 12.92 * v
	}
	return 1.055*math.Pow(v, 1/2.4) - 0.055
}

// ray is the camera ray through the image point (x, y) of an image of
// size pixels, in pixel units from the top-left corner (pixel centres at
// +0.5): direction Forward + u Right + v Up, so that its parameter t is the
// depth along the camera axis. It also returns the camera-space direction
// (u, v, 1).
func (c *Camera) ray(x, y float64, size int) (d, cam Vec) {
	return c.rayTan(x, y, size, math.Tan(c.FOV/2))
}

// rayTan is ray with h = tan(FOV/2) given.
func (c *Camera) rayTan(x, y float64, size int, h float64) (d, cam Vec) {
	u := (2*x/float64(size) - 1) * h
	v := (1 - 2*y/float64(size)) * h
	return c.Forward.AddScaled(c.Right, u).AddScaled(c.Up, v), Vec{u, v, 1}
}

// Render casts the scene at size x size pixels (see Render's fields for
// what each label holds).
func (s *Scene) Render(size int, opt Options) (*Render, error) {
	if size < 1 || size > 4096 {
		return nil, fmt.Errorf("scene: render size %d, expected 1-4096", size)
	}
	if opt.DepthJump == 0 {
		opt.DepthJump = 0.1
	}
	n := size * size
	r := &Render{Size: size, RGB: make([]float32, 3*n), Depth: make([]float32, n), Normal: make([]float32, 3*n), ID: make([]int32, n), Contour: make([]uint8, n)}
	cam := &s.Camera
	o := cam.Pos
	dirs := make([]Vec, n) // camera-space ray directions (u, v, 1)
	ss := max(1, opt.Supersample)
	tan := math.Tan(cam.FOV / 2)
	fp := s.footprints(size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := y*size + x
			d, dc := cam.rayTan(float64(x)+0.5, float64(y)+0.5, size, tan)
			dirs[p] = dc
			h := s.cast(o, d, rayEps, fp, x, y)
			nc := Vec{0, 0, -1}
			depth := MaxDepth
			if h.obj >= 0 {
				r.ID[p] = s.Objects[h.obj].ID
				depth = h.t
				nc = Vec{h.normal.Dot(cam.Right), h.normal.Dot(cam.Up), h.normal.Dot(cam.Forward)}.Unit()
			}
			r.Depth[p] = float32(depth)
			for c := 0; c < 3; c++ {
				r.Normal[c*n+p] = float32(nc[c])
			}
			if !(opt.All && ss > 1) {
				col := encode(s.shade(o, d, h))
				for c := 0; c < 3; c++ {
					r.RGB[c*n+p] = float32(col[c])
				}
			}
		}
	}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := y*size + x
			boundary := false
			for _, q := range [4][2]int{{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}} {
				if q[0] < 0 || q[0] >= size || q[1] < 0 || q[1] >= size {
					continue
				}
				qi := q[0]*size + q[1]
				other := r.ID[qi] != r.ID[p]
				boundary = boundary || other
				if r.Depth[p] > r.Depth[qi] {
					continue // the farther side of an edge is not its contour
				}
				if other || r.ID[p] != 0 && r.discontinuous(dirs, p, qi, opt.DepthJump) {
					r.Contour[p] = 1
				}
			}
			if ss > 1 && (boundary || opt.All) {
				var sum Vec
				for j := 0; j < ss; j++ {
					for i := 0; i < ss; i++ {
						d, _ := cam.rayTan(float64(x)+(float64(i)+0.5)/float64(ss), float64(y)+(float64(j)+0.5)/float64(ss), size, tan)
						sum = sum.Add(s.shade(o, d, s.cast(o, d, rayEps, fp, x, y)))
					}
				}
				col := encode(sum.Scale(1 / float64(ss*ss)))
				for c := 0; c < 3; c++ {
					r.RGB[c*n+p] = float32(col[c])
				}
			}
		}
	}
	return r, nil
}

// discontinuous reports whether neither of pixels p and q (camera-space
// ray directions dirs) lies on the other's tangent plane within jump
// (relative depth).
func (r *Render) discontinuous(dirs []Vec, p, q int, jump float64) bool {
	return r.mispredicts(dirs, p, q, jump) && r.mispredicts(dirs, q, p, jump)
}

// mispredicts reports whether the tangent plane at pixel a's surface point
// predicts pixel b's depth off by more than jump (relative), or not at all
// (b's ray parallel to the plane or meeting it behind the camera).
func (r *Render) mispredicts(dirs []Vec, a, b int, jump float64) bool {
	n := r.Size * r.Size
	nc := Vec{float64(r.Normal[a]), float64(r.Normal[n+a]), float64(r.Normal[2*n+a])}
	pa := dirs[a].Scale(float64(r.Depth[a]))
	den := nc.Dot(dirs[b])
	if den == 0 {
		return true
	}
	pred := nc.Dot(pa) / den
	db := float64(r.Depth[b])
	return !(pred > 0) || math.Abs(pred-db) > jump*db
}
