package train

import (
	"math"
	"time"
)

// budgetPlanner decides the length of a run with a wall-time budget. Run
// first estimates it from one timed pass (timeStep); a fresh run then
// measures steps 2 to 12 and plans the rest of 95% of the budget, and
// after that measures again over the steps since the last estimate each
// time another tenth of the budget has gone (from 20% to 80%), and at the
// planned end if that comes before 85% of the budget: load that changes
// during a run would otherwise end it well inside its budget, or at the
// 110% guard (overrun).
type budgetPlanner struct {
	budget      float64 // seconds; 0: no budget
	recalibrate bool    // a fresh budget run of more than 12 steps
	now         func() time.Time
	t0          time.Time // the training loop's start
	tCal        time.Time // step 2
	tWin        time.Time // the start of the current measuring window
	winStart    int       // its first step
	remeasureAt []float64 // fractions of the budget still to measure at
}

func newBudgetPlanner(budget float64, recalibrate bool, now func() time.Time, t0 time.Time) *budgetPlanner {
	return &budgetPlanner{budget: budget, recalibrate: recalibrate, now: now, t0: t0,
		remeasureAt: []float64{0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}}
}

// elapsed is the seconds since the loop started.
func (p *budgetPlanner) elapsed() float64 { return p.now().Sub(p.t0).Seconds() }

// overrun reports whether a budget run is past 110% of its budget.
func (p *budgetPlanner) overrun() bool { return p.budget > 0 && p.elapsed() > p.budget*1.1 }

// plan runs before step (of a run planned to take steps, ending now at
// end; stopAfter as in Options). It reports measured when it measured the
// step time (per, seconds), and then a new length n with the reason, or
// n = 0 when the plan stands (a change of at most 3% does not move the
// schedule: the cosine learning rate follows a new length from that step
// on). After measuring, the caller applies n and calls newWindow.
// reassignShare is the time a step's share of the reassignments takes,
// added to the first estimate, whose window holds none.
func (p *budgetPlanner) plan(step, steps, end, stopAfter int, reassignShare func() float64) (n int, why string, per float64, measured bool) {
	if !p.recalibrate {
		return 0, "", 0, false
	}
	if step == 2 {
		p.tCal = p.now()
	}
	if step == 12 {
		per := p.now().Sub(p.tCal).Seconds()/10 + reassignShare()
		left := 0.95*p.budget - p.elapsed()
		return step + int(math.Max(1, left/per)), "measured", per, true
	}
	elapsed := p.elapsed()
	due := len(p.remeasureAt) > 0 && elapsed >= p.remeasureAt[0]*p.budget
	early := step == end-1 && elapsed < 0.85*p.budget && (stopAfter == 0 || end < stopAfter)
	if p.winStart < 12 || step <= p.winStart+4 || !(due || early) {
		return 0, "", 0, false
	}
	for len(p.remeasureAt) > 0 && elapsed >= p.remeasureAt[0]*p.budget {
		p.remeasureAt = p.remeasureAt[1:]
	}
	per = p.now().Sub(p.tWin).Seconds() / float64(step-p.winStart)
	left := 0.95*p.budget - p.elapsed()
	if n := step + int(math.Max(1, left/per)); math.Abs(float64(n-steps)) > 0.03*float64(steps) {
		return n, "measured again:", per, true
	}
	return 0, "", per, true
}

// newWindow starts a measuring window at step.
func (p *budgetPlanner) newWindow(step int) { p.tWin, p.winStart = p.now(), step }
