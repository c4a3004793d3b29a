// Package parse owns the parse state machine: claiming a dump with a
// lease, finding its firmware, parsing it through the sidecar or the
// built-in decoder, and recording the outcome; and the rule for putting a
// dump back in line (re-parse by an admin, requeue of a stuck parse by the
// retention sweep).
package parse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// MessageTypeReparse marks a parse-queue message of the project's own, as
// opposed to an S3 event notification, which the same queue carries.
const MessageTypeReparse = "reparse"

// Message asks the parse function to parse one dump. The admin and
// retention functions write it to the parse queue as JSON.
type Message struct {
	Type      string `json:"type"`
	DeviceKey string `json:"device_key"`
	ID        string `json:"id"`
	Reason    string `json:"reason,omitempty"`
}

// Validate checks a message read from the queue.
func (m Message) Validate() error {
	if m.Type != MessageTypeReparse {
		return crashdump.Errorf(crashdump.EInvalid, "message type %q is not %q", m.Type, MessageTypeReparse)
	}
	if err := crashdump.ValidateDeviceKey(m.DeviceKey); err != nil {
		return err
	}
	return crashdump.ValidateID(m.ID)
}

// Queue sends parse requests.
type Queue interface {
	SendParse(ctx context.Context, msgs ...Message) error
}

// ResetStore puts a dump back to PENDING.
type ResetStore interface {
	// ResetToPending sets the dump PENDING unless a parse holds a lease
	// that runs past now, in which case it returns crashdump.ErrConflict;
	// a missing dump is crashdump.ErrNotFound. With countRequeue, the
	// dump's requeue count goes up by one.
	ResetToPending(ctx context.Context, deviceKey, id string, now time.Time, countRequeue bool) (*crashdump.Dump, error)
}

// Requeue puts a dump back to PENDING and queues a parse request for it.
// It answers a conflict while a parse holds a valid lease on the dump, and
// not found for a dump that does not exist.
func Requeue(ctx context.Context, store ResetStore, queue Queue, deviceKey, id, reason string, now time.Time, countRequeue bool) (*crashdump.Dump, error) {
	d, err := store.ResetToPending(ctx, deviceKey, id, now, countRequeue)
	switch {
	case errors.Is(err, crashdump.ErrNotFound):
		return nil, crashdump.Errorf(crashdump.ENotFound, "no such coredump")
	case errors.Is(err, crashdump.ErrConflict):
		return nil, crashdump.Errorf(crashdump.EConflict, "the coredump is being parsed; try again when the parse ends")
	case err != nil:
		return nil, fmt.Errorf("resetting %s to PENDING: %w", id, err)
	}
	if err := queue.SendParse(ctx, Message{Type: MessageTypeReparse, DeviceKey: deviceKey, ID: id, Reason: reason}); err != nil {
		return nil, fmt.Errorf("queueing parse of %s: %w", id, err)
	}
	return d, nil
}
