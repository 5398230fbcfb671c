package report

import (
	"errors"
	"time"
)

// Errors of the delivery queue.
var (
	// ErrSettled means a queue entry needs no work: its report was delivered, failed, or
	// superseded by a newer entry, and the store has cleaned the entry up.
	ErrSettled = errors.New("report delivery already settled")
	// ErrSuperseded means another worker took the report over (it claimed the queue entry
	// after this one looked dead); the old worker must stop without writing anything.
	ErrSuperseded = errors.New("report delivery taken over by another worker")
	// ErrNotFailed means only a failed report can be retried (409).
	ErrNotFailed = errors.New("report has not failed")
)

// Job is one entry of the delivery queue as it is handed to a worker.
type Job struct {
	EntryID   string // the queue's opaque entry id
	TenantKey string
	ReportID  string
}

// Delivery is a report taken by a worker, with what earlier attempts already finished.
type Delivery struct {
	Job
	Report Report
	// Fence grows each time a worker takes the report; step records written with an older
	// fence are refused, so a worker that was presumed dead cannot overwrite its successor.
	Fence int64
	// Attempts counts every attempt so far, this one included. Tries counts the attempts
	// since a step last finished, which is what the retry bound applies to: a slow but
	// progressing delivery is not given up.
	Attempts int
	Tries    int
	Progress Progress
}

// Progress is the durable record of a delivery's steps, so that a crash never repeats a
// finished step.
type Progress struct {
	AccountID string // the JSM customer the request is raised on behalf of; "" for the service account
	// EmailSource is what the worker found out about the reporter's email; set with the
	// finished "customer" step.
	EmailSource EmailSource
	TicketKey   string // the request, once created or found
	TicketURL   string
	// Uploads are temporary files already on the desk, by file id (an attachment id, or
	// BundleFileID); they can be attached until they expire.
	Uploads map[string]Upload
	// Done holds the finished steps by name.
	Done map[string]bool
	// Pending holds write-once calls that were sent but whose outcome is unknown (a timeout,
	// a lost answer, or a crash), by step name, with when they were sent.
	Pending map[string]time.Time
}

// Upload is one temporary file on the desk.
type Upload struct {
	TempID string
	At     time.Time
}

// BundleFileID is the file id of the support bundle in Progress.Uploads.
const BundleFileID = "bundle"

// StepRecord changes a delivery's Progress in one write.
type StepRecord struct {
	AccountID   string
	EmailSource EmailSource
	TicketKey   string
	TicketURL   string
	Uploads     map[string]Upload
	Done        []string
	// Pending marks write-once calls about to be sent; Settled clears marks whose call
	// certainly did not take effect or whose outcome is now known.
	Pending []string
	Settled []string
}
