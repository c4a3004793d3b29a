package retention

import (
	"strconv"
	"strings"
	"sync"
)

// Actions a sweep takes, as named in the report.
const (
	ActionOverCap      = "deleted_over_cap"
	ActionExpired      = "deleted_expired"
	ActionOrphanObject = "orphan_object"
	ActionOrphanRecord = "orphan_record"
	ActionRequeue      = "requeued"
	ActionFailStuck    = "failed_stuck"
)

// Action is one thing a sweep did, or in a dry run would do.
type Action struct {
	Action    string `json:"action"`
	DeviceKey string `json:"device_key"`
	ID        string `json:"id,omitempty"`
	// Detail is the object key of an orphan object, or the reason of a
	// requeue or failure.
	Detail string `json:"detail,omitempty"`
}

// Report says what one sweep found and did (or, in a dry run, would do).
// The counts are complete; the lists hold at most the Sweeper's MaxListed
// entries each, and Truncated says when some were left out.
type Report struct {
	DryRun    bool   `json:"dry_run"`
	DeviceKey string `json:"device_key,omitempty"`
	// Complete is true when the sweep reached its end; otherwise Resume
	// names where the next one carries on.
	Complete    bool   `json:"complete"`
	Resume      string `json:"resume,omitempty"`
	ResumedFrom string `json:"resumed_from,omitempty"`
	// Continued is true when a chained invocation was started to carry
	// on from Resume.
	Continued bool `json:"continued,omitempty"`

	Devices        int   `json:"devices"`
	DumpsSeen      int   `json:"dumps_seen"`
	ObjectsSeen    int   `json:"objects_seen"`
	DeletedOverCap int   `json:"deleted_over_cap"`
	DeletedExpired int   `json:"deleted_expired"`
	OrphanObjects  int   `json:"orphan_objects"`
	OrphanRecords  int   `json:"orphan_records"`
	Requeued       int   `json:"requeued"`
	FailedStuck    int   `json:"failed_stuck"`
	Errors         int   `json:"errors"`
	DurationMS     int64 `json:"duration_ms"`

	Actions []Action `json:"actions"`
	// ErrorSamples are logged, never answered: they are internal text.
	ErrorSamples []string `json:"-"`
	Truncated    bool     `json:"truncated,omitempty"`

	mu        sync.Mutex
	maxListed int
}

func newReport(opts Options, maxListed int) *Report {
	return &Report{DryRun: opts.DryRun, DeviceKey: opts.DeviceKey, Actions: []Action{}, maxListed: maxListed}
}

func (r *Report) add(action, deviceKey, id, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch action {
	case ActionOverCap:
		r.DeletedOverCap++
	case ActionExpired:
		r.DeletedExpired++
	case ActionOrphanObject:
		r.OrphanObjects++
	case ActionOrphanRecord:
		r.OrphanRecords++
	case ActionRequeue:
		r.Requeued++
	case ActionFailStuck:
		r.FailedStuck++
	}
	if len(r.Actions) >= r.maxListed {
		r.Truncated = true
		return
	}
	r.Actions = append(r.Actions, Action{Action: action, DeviceKey: deviceKey, ID: id, Detail: detail})
}

func (r *Report) addError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Errors++
	if len(r.ErrorSamples) >= r.maxListed {
		r.Truncated = true
		return
	}
	r.ErrorSamples = append(r.ErrorSamples, err.Error())
}

func (r *Report) countSeen(devices, dumps int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Devices += devices
	r.DumpsSeen += dumps
}

func (r *Report) countObjects(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ObjectsSeen += n
}

// The phases of a fleet sweep, in order.
const (
	PhaseDevices      = "devices"
	PhaseUnregistered = "unregistered"
	PhasePending      = "pending"
	PhaseParsing      = "parsing"
)

// Checkpoint is where an unfinished sweep stopped: the phase, the registry
// shard (in the devices phase) and the last device key, or the last
// "<device>/<id>" in the stuck phases, whose work is done.
type Checkpoint struct {
	Phase string
	Shard int
	After string
}

// Token renders the checkpoint as "<phase>:<shard>:<after>", the form the
// report shows.
func (c Checkpoint) Token() string {
	if c.Phase == "" {
		return ""
	}
	return c.Phase + ":" + strconv.Itoa(c.Shard) + ":" + c.After
}

// dump splits the After of a stuck phase into device key and id.
func (c Checkpoint) dump() (deviceKey, id string) {
	dev, id, ok := strings.Cut(c.After, "/")
	if !ok {
		return "", ""
	}
	return dev, id
}
