package train

import (
	"testing"
	"time"
)

// The planner alone, on a simulated clock: steps cost 100 ms until step
// 16, then 25 ms; a 3 s budget.
func TestBudgetPlanner(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	p := newBudgetPlanner(3, true, c.Now, c.Now())
	none := func() float64 { return 0 }
	steps, end := 30, 30
	var plans []int
	for step := 0; step < end; step++ {
		if p.overrun() {
			t.Fatalf("overrun at step %d (%.2fs)", step, p.elapsed())
		}
		if n, _, per, measured := p.plan(step, steps, end, 0, none); measured {
			if step == 12 && per != 0.1 {
				t.Errorf("step-12 estimate %v s a step, want 0.1", per)
			}
			if n > 0 {
				steps, end = n, n
				plans = append(plans, n)
			}
			p.newWindow(step)
		}
		if step < 16 {
			c.advance(100 * time.Millisecond)
		} else {
			c.advance(25 * time.Millisecond)
		}
	}
	// Step 12: (2.85 - 1.2) / 0.1 = 16 more steps, 28 in all; then the
	// faster steps make later estimates add more.
	if len(plans) < 2 || plans[0] != 28 || plans[len(plans)-1] <= 28 {
		t.Fatalf("plans %v, want 28 first, then longer", plans)
	}
	if e := p.elapsed(); e < 0.75*3 || e > 1.1*3 {
		t.Fatalf("the run took %.2fs of its 3s budget (plans %v)", e, plans)
	}
	c.advance(time.Second)
	if !p.overrun() {
		t.Error("no overrun past 110% of the budget")
	}
}
