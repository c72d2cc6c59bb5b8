package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/store"
)

// Job states.
const (
	JobRunning   = "running"
	JobDone      = "done"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Job is a background job's record; GET /v1/jobs/{id} returns it.
type Job struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Category string `json:"category,omitempty"`
	// Rate is the most tokens moved per second (0: no limit).
	Rate  int    `json:"rate,omitempty"`
	State string `json:"state"`
	// Cursor is where the scan resumes after a crash. It is stored but
	// never returned by the API (it names a token).
	Cursor  string `json:"cursor,omitempty"`
	Scanned int64  `json:"scanned"`
	Moved   int64  `json:"moved"`
	Skipped int64  `json:"skipped"`
	// Total is the number of stored tokens in scope when the job started.
	Total      int64     `json:"total"`
	Progress   float64   `json:"progress"`
	ETASeconds float64   `json:"eta_seconds,omitempty"`
	Node       string    `json:"node"`
	LeaseUntil time.Time `json:"lease_until"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`
	CreatedBy  string    `json:"created_by"`
}

// jobLease is how long a node owns a running job without renewing it; after
// that another replica (or this one after a restart) takes it over.
const jobLease = 30 * time.Second

// rewrapBatch is the number of rows scanned per step (and per progress
// save).
const rewrapBatch = 4000

// RewrapRequest starts a rewrap.
type RewrapRequest struct {
	Category string `json:"category,omitempty"`
	Rate     int    `json:"rate,omitempty"`
}

type jobRunner struct {
	mu      sync.Mutex
	running map[string]context.CancelFunc
	wg      sync.WaitGroup
}

// StartRewrap starts a background job that moves every stored token (of one
// category, or all) to its category's primary key version: each value is
// decrypted with its old subject key and sealed with the subject's key of the
// primary version, and the row is replaced only if its version has not
// moved meanwhile. The job is resumable: its cursor is stored after every
// batch, and a crash resumes from there (ResumeJobs).
func (v *Vault) StartRewrap(ctx context.Context, p *Principal, req *RewrapRequest) (*Job, error) {
	if !v.authz.Can(p, OpKeysRotate) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not rewrap keys")
	}
	var cat *tokenizer.Category
	if req.Category != "" {
		var err error
		if cat, err = lookupCategory(req.Category); err != nil {
			return nil, err
		}
	}
	if req.Rate < 0 {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "rate must be positive (tokens per second) or 0 for no limit")
	}
	jobs, err := v.store.ListRecords(ctx, kindJob)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, r := range jobs {
		var j Job
		if json.Unmarshal(r.Value, &j) == nil && j.State == JobRunning && (j.Category == "" || req.Category == "" || j.Category == req.Category) {
			return nil, errorf(KindConflict, CodeJobAlreadyActive, "rewrap job %s is already running", j.ID)
		}
	}
	counts, err := v.store.TokenCounts(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	var total int64
	for _, c := range counts {
		if cat == nil || c.Category == cat.ID {
			total += c.Count
		}
	}
	now := v.now().UTC()
	j := &Job{ID: newID("j_", now), Type: "rewrap", Category: req.Category, Rate: req.Rate, State: JobRunning,
		Total: total, Node: v.node, LeaseUntil: now.Add(jobLease), StartedAt: now, UpdatedAt: now, CreatedBy: p.Name}
	rev, err := v.saveRecord(ctx, kindJob, j.ID, "", j, 0)
	if err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "key.rewrap", j.ID, "", map[string]string{"by": p.Name, "category": req.Category}); err != nil {
		return nil, err
	}
	run := *j // the job goroutine owns its copy
	v.runJob(&run, rev)
	return j, nil
}

// GetJob returns a job record.
func (v *Vault) GetJob(ctx context.Context, p *Principal, id string) (*Job, error) {
	if !v.authz.Can(p, OpKeysRead) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read jobs")
	}
	if !validRecordID(id) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "invalid job id")
	}
	var j Job
	_, err := v.loadRecord(ctx, kindJob, id, &j)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(KindNotFound, CodeJobNotFound, "no such job")
	}
	if err != nil {
		return nil, asStoreErr(err)
	}
	j.Cursor = ""
	return &j, nil
}

// ResumeJobs takes over running jobs whose lease ran out (their node died)
// or that belong to this node (it restarted), and runs them. The server calls
// it at start-up and periodically.
func (v *Vault) ResumeJobs(ctx context.Context) (int, error) {
	recs, err := v.store.ListRecords(ctx, kindJob)
	if err != nil {
		return 0, storeErr(err)
	}
	n := 0
	now := v.now().UTC()
	for _, r := range recs {
		var j Job
		if json.Unmarshal(r.Value, &j) != nil || j.State != JobRunning {
			continue
		}
		if v.jobActive(j.ID) {
			continue
		}
		if j.Node != v.node && now.Before(j.LeaseUntil) {
			continue
		}
		j.Node, j.LeaseUntil, j.UpdatedAt = v.node, now.Add(jobLease), now
		rev, err := v.saveRecord(ctx, kindJob, j.ID, "", &j, r.Rev)
		if err != nil {
			continue // another replica took it
		}
		v.log.Info("resuming job", "job", j.ID, "type", j.Type, "scanned", j.Scanned)
		v.runJob(&j, rev)
		n++
	}
	return n, nil
}

func (v *Vault) jobActive(id string) bool {
	v.jobs.mu.Lock()
	defer v.jobs.mu.Unlock()
	_, ok := v.jobs.running[id]
	return ok
}

// StopJobs stops the jobs running in this process and waits for them; their
// records stay "running" so that they resume on the next start.
func (v *Vault) StopJobs() {
	v.jobs.mu.Lock()
	for _, cancel := range v.jobs.running {
		cancel()
	}
	v.jobs.mu.Unlock()
	v.jobs.wg.Wait()
}

func (v *Vault) runJob(j *Job, rev uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	v.jobs.mu.Lock()
	if v.jobs.running == nil {
		v.jobs.running = map[string]context.CancelFunc{}
	}
	v.jobs.running[j.ID] = cancel
	v.jobs.mu.Unlock()
	v.jobs.wg.Add(1)
	go func() {
		defer v.jobs.wg.Done()
		defer func() {
			v.jobs.mu.Lock()
			delete(v.jobs.running, j.ID)
			v.jobs.mu.Unlock()
			cancel()
		}()
		v.rewrapLoop(ctx, j, rev)
	}()
}

func (v *Vault) rewrapLoop(ctx context.Context, j *Job, rev uint64) {
	var cat *tokenizer.Category
	if j.Category != "" {
		cat, _ = tokenizer.Lookup(j.Category)
	}
	batch := rewrapBatch
	if j.Rate > 0 {
		// A rate-limited job moves about a quarter of a second's worth per
		// step, so the limit holds over short windows too and a bounded
		// amount of work is in flight; but at least 64 rows (re-reading a
		// store bucket for a handful of rows would waste it), as long as a
		// step stays within 10 s, well inside the job's lease.
		batch = min(rewrapBatch, max(j.Rate/4, min(64, j.Rate*10)))
	}
	run := rewrapRun{v: v, j: j, rev: rev, cat: cat, batch: batch, started: time.Now(), movedAtStart: j.Moved}
	run.ko, _ = v.obs.(KeyObserver)
	for {
		done, err := run.pass(ctx)
		if done || ctx.Err() != nil {
			return
		}
		// Transient failures (store or KEK outage) are retried from the
		// job's saved cursor.
		v.log.Warn("rewrap step failed; retrying", "job", j.ID, "error", err)
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

// rewrapRun is the state of one rewrap job in this process.
type rewrapRun struct {
	v            *Vault
	j            *Job
	rev          uint64
	cat          *tokenizer.Category
	batch        int
	started      time.Time
	movedAtStart int64
	ko           KeyObserver
}

// rewrapStep is one scanned batch, made ready to apply: the re-encrypted
// rows and where the scan continues.
type rewrapStep struct {
	updates []store.KeyUpdate
	scanned int64
	skipped int64
	next    string
	err     error
}

// pass runs the job from its saved cursor until it is done (true), stopped
// (ctx, lost lease: true) or a step fails (false and the error). It is a
// two-stage pipeline: while one batch's updates are written and the job's
// progress saved, the next batch is scanned and re-encrypted, so neither
// the store's round trips nor the encryption wait for the other. The saved
// cursor only ever passes batches whose updates were written, so a crash
// at any point resumes without losing a token (re-doing a batch is
// harmless: rows already on the primary are not selected).
func (r *rewrapRun) pass(ctx context.Context) (bool, error) {
	pctx, cancel := context.WithCancel(ctx)
	steps := make(chan rewrapStep, 1)
	producerDone := make(chan struct{})
	defer func() {
		cancel()
		<-producerDone // nothing of this pass runs after it returns
	}()
	go func() {
		defer close(producerDone)
		defer close(steps)
		cursor := r.j.Cursor
		for {
			rows, next, err := r.v.store.ScanTokens(pctx, cursor, r.batch)
			st := rewrapStep{next: next, err: err, scanned: int64(len(rows))}
			if err == nil {
				st.updates, st.skipped, st.err = r.v.prepareRewrap(pctx, r.cat, rows)
			}
			select {
			case steps <- st:
			case <-pctx.Done():
				return
			}
			if st.err != nil || next == "" {
				return
			}
			cursor = next
		}
	}()
	v, j := r.v, r.j
	for st := range steps {
		if st.err != nil {
			return false, st.err
		}
		moved, skipped, err := v.applyRewrap(ctx, st.updates)
		if err != nil {
			return false, err
		}
		j.Moved += moved
		j.Skipped += st.skipped + skipped
		j.Scanned += st.scanned
		now := v.now().UTC()
		j.Cursor = st.next
		j.UpdatedAt = now
		j.LeaseUntil = now.Add(jobLease)
		if j.Total > 0 {
			j.Progress = min(1, float64(j.Scanned)/float64(j.Total))
		}
		if el := time.Since(r.started).Seconds(); el > 0 && j.Scanned > 0 {
			rate := float64(j.Scanned) / el
			if rem := j.Total - j.Scanned; rem > 0 && rate > 0 {
				j.ETASeconds = float64(rem) / rate
			} else {
				j.ETASeconds = 0
			}
		}
		if st.next == "" {
			j.State, j.FinishedAt, j.Progress, j.ETASeconds, j.Cursor = JobDone, now, 1, 0, ""
		}
		nrev, err := v.saveRecord(ctx, kindJob, j.ID, "", j, r.rev)
		if err != nil {
			// Lost the lease (another node took over) or the store is
			// down: stop; ResumeJobs picks it up again.
			v.log.Warn("rewrap job stopped: cannot save progress", "job", j.ID, "error", err)
			return true, nil
		}
		r.rev = nrev
		if r.ko != nil {
			r.ko.Rewrap(j.Scanned, j.Total, j.State == JobRunning)
		}
		if j.State == JobDone {
			v.log.Info("rewrap done", "job", j.ID, "moved", j.Moved, "scanned", j.Scanned)
			return true, nil
		}
		if j.Rate > 0 {
			want := time.Duration(float64(j.Moved-r.movedAtStart) / float64(j.Rate) * float64(time.Second))
			if d := want - time.Since(r.started); d > 0 && !sleepCtx(ctx, d) {
				return true, nil
			}
		}
	}
	// The producer stopped without a last step: only when ctx ended.
	return true, ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// prepareRewrap re-encrypts, under their category's primary version, the
// rows of one batch that are not on it. Rows that cannot be moved (subject
// erased, value that does not decrypt) are counted as skipped.
func (v *Vault) prepareRewrap(ctx context.Context, cat *tokenizer.Category, rows []store.Token) (updates []store.KeyUpdate, skipped int64, err error) {
	primaries := map[uint16]uint32{}
	var sel []int
	for i := range rows {
		r := &rows[i]
		if cat != nil && r.Category != cat.ID {
			continue
		}
		c, ok := tokenizer.ByID(r.Category)
		if !ok {
			continue
		}
		pv, ok := primaries[r.Category]
		if !ok {
			if pv, err = v.keys.Primary(ctx, c); err != nil {
				return nil, 0, err
			}
			primaries[r.Category] = pv
		}
		if r.KeyVersion != pv {
			sel = append(sel, i)
		}
	}
	if len(sel) == 0 {
		return nil, 0, nil
	}
	oldRefs := make([]keys.DEKRef, len(sel))
	newRefs := make([]keys.DEKRef, len(sel))
	for n, i := range sel {
		r := &rows[i]
		oldRefs[n] = keys.DEKRef{Subject: r.Subject, Category: r.Category, Version: r.KeyVersion}
		newRefs[n] = keys.DEKRef{Subject: r.Subject, Category: r.Category, Version: primaries[r.Category]}
	}
	oldDEKs, err := v.keys.DEKs(ctx, oldRefs, false)
	if err != nil {
		return nil, 0, err
	}
	newDEKs, err := v.keys.DEKs(ctx, newRefs, true)
	if err != nil {
		return nil, 0, err
	}
	updates = make([]store.KeyUpdate, 0, len(sel))
	var pt []byte
	for n, i := range sel {
		r := &rows[i]
		if oldDEKs[n] == nil {
			skipped++ // the subject was erased meanwhile
			continue
		}
		pt, err = oldDEKs[n].Open(pt[:0], r.Token, r.Ciphertext)
		if err != nil {
			v.log.Error("rewrap: a stored value does not decrypt; left on its version", "category", r.Category)
			skipped++
			continue
		}
		updates = append(updates, store.KeyUpdate{Token: r.Token, OldVersion: r.KeyVersion,
			NewVersion: newRefs[n].Version, Ciphertext: newDEKs[n].Seal(nil, r.Token, pt), Expect: r})
	}
	clear(pt)
	return updates, skipped, nil
}

// applyRewrap writes prepared updates. A row that changed since it was
// scanned (erased, or moved by a concurrent writer) is skipped.
func (v *Vault) applyRewrap(ctx context.Context, updates []store.KeyUpdate) (moved, skipped int64, err error) {
	if len(updates) == 0 {
		return 0, 0, nil
	}
	res, err := v.store.UpdateTokenKeys(ctx, updates)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range res {
		if e == nil {
			moved++
		} else {
			skipped++ // erased or moved by a concurrent writer
		}
	}
	return moved, skipped, nil
}

// describeJob is used by the CLI's progress line.
func (j *Job) String() string {
	return fmt.Sprintf("%s %s %.1f%% (%d/%d scanned, %d moved)", j.ID, j.State, j.Progress*100, j.Scanned, j.Total, j.Moved)
}
