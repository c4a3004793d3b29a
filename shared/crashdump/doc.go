// Package crashdump holds the domain of the crash-dump service: the dump
// record and its parse states, the device identity, the validation rules for
// everything a device or an admin sends, the application error type, and the
// small interfaces through which the domain speaks to storage and queues.
//
// Adapters (DynamoDB, S3, SQS) implement the interfaces; the HTTP layer and
// the event handlers call the domain packages (upload, parse, retention) that
// are built on this one.
package crashdump
