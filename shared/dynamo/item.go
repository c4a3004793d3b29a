// Package dynamo stores dump records in one DynamoDB table. It implements
// the storage interfaces of the domain packages (upload, parse, admin,
// retention); this file holds the table's layout.
//
// Layout (keys pk and sk, both strings):
//
//	DEV#<device>      DUMP#<id>        the dump record
//	DEV#<device>      SHA#<sha256>     duplicate marker, names the dump id
//	DEV#<device>      RATE#<hour>      count of new dumps in that UTC hour
//	DEVICES#<shard>   <device>         registry of devices, for sweeps
//
// Global secondary indexes, all with sort key id:
//
//	fleet     fleet_pk    = <yyyy-mm-dd>#<shard>   fleet-wide listing
//	firmware  firmware_pk = <model>#<version>      dumps of one build
//	work      work_pk     = <status>               sparse: dumps not done
package dynamo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Index names, shared with template.yaml (a test checks they agree).
const (
	IndexFleet    = "fleet"
	IndexFirmware = "firmware"
	IndexWork     = "work"
)

// Store is the DynamoDB adapter.
type Store struct {
	Client *dynamodb.Client
	Table  string
	// RetentionDays sets the TTL attribute expires_at on new records;
	// 0 leaves it unset.
	RetentionDays int
}

// record is a dump as stored.
type record struct {
	PK              string `dynamodbav:"pk"`
	SK              string `dynamodbav:"sk"`
	ID              string `dynamodbav:"id"`
	DeviceKey       string `dynamodbav:"device_key"`
	ModelCode       string `dynamodbav:"model_code"`
	Chip            string `dynamodbav:"chip"`
	FirmwareVersion string `dynamodbav:"firmware_version"`
	Size            int64  `dynamodbav:"size"`
	SHA256          string `dynamodbav:"sha256"`
	UploadedAt      string `dynamodbav:"uploaded_at"`
	ParseStatus     string `dynamodbav:"parse_status"`
	FleetPK         string `dynamodbav:"fleet_pk"`
	FirmwarePK      string `dynamodbav:"firmware_pk"`
	WorkPK          string `dynamodbav:"work_pk,omitempty"`
	ExpiresAt       int64  `dynamodbav:"expires_at,omitempty"`

	LeaseUntil   int64  `dynamodbav:"lease_until,omitempty"`
	ParseAttempt int    `dynamodbav:"parse_attempts,omitempty"`
	Requeues     int    `dynamodbav:"requeues,omitempty"`
	ParsedAt     string `dynamodbav:"parsed_at,omitempty"`
	Parser       string `dynamodbav:"parser,omitempty"`
	DurationMS   int64  `dynamodbav:"parse_duration_ms,omitempty"`
	ParseError   string `dynamodbav:"parse_error,omitempty"`
	Output       string `dynamodbav:"output,omitempty"`
	OutputKey    string `dynamodbav:"output_key,omitempty"`
	Signature    string `dynamodbav:"crash_signature,omitempty"`
	TopFrame     string `dynamodbav:"top_frame,omitempty"`
}

// Key attribute values.
func devicePK(deviceKey string) string { return "DEV#" + deviceKey }
func dumpSK(id string) string          { return "DUMP#" + id }
func shaSK(sha string) string          { return "SHA#" + sha }
func rateSK(t time.Time) string        { return "RATE#" + t.UTC().Format("2006010215") }
func registryPK(deviceKey string) string {
	return "DEVICES#" + strconv.Itoa(crashdump.DeviceShard(deviceKey))
}

// FleetPK is the fleet index partition of a dump uploaded at t with id.
func FleetPK(t time.Time, id string) string {
	return fmt.Sprintf("%s#%d", t.UTC().Format("2006-01-02"), crashdump.FleetShard(id))
}

// FirmwarePK is the firmware index partition of a model and version.
func FirmwarePK(model, version string) string { return model + "#" + version }

// workPK is the sparse work index value of a status: set while the dump
// still needs the parse function, absent once it is done.
func workPK(s crashdump.Status) string {
	switch s {
	case crashdump.StatusPending, crashdump.StatusParsing, crashdump.StatusWaitingForFirmware:
		return string(s)
	}
	return ""
}

func toRecord(d *crashdump.Dump, retentionDays int) record {
	r := record{
		PK:              devicePK(d.DeviceKey),
		SK:              dumpSK(d.ID),
		ID:              d.ID,
		DeviceKey:       d.DeviceKey,
		ModelCode:       d.ModelCode,
		Chip:            d.Chip,
		FirmwareVersion: d.FirmwareVersion,
		Size:            d.Size,
		SHA256:          d.SHA256,
		UploadedAt:      d.UploadedAt.UTC().Format(time.RFC3339Nano),
		ParseStatus:     string(d.ParseStatus),
		FleetPK:         FleetPK(d.UploadedAt, d.ID),
		FirmwarePK:      FirmwarePK(d.ModelCode, d.FirmwareVersion),
		WorkPK:          workPK(d.ParseStatus),
		ParseAttempt:    d.ParseAttempt,
		Requeues:        d.Requeues,
		Parser:          d.Parser,
		DurationMS:      d.DurationMS,
		ParseError:      d.ParseError,
		Output:          d.Output,
		OutputKey:       d.OutputKey,
		Signature:       d.Signature,
		TopFrame:        d.TopFrame,
	}
	if retentionDays > 0 {
		r.ExpiresAt = d.UploadedAt.Add(time.Duration(retentionDays) * 24 * time.Hour).Unix()
	}
	if !d.LeaseUntil.IsZero() {
		r.LeaseUntil = d.LeaseUntil.Unix()
	}
	if !d.ParsedAt.IsZero() {
		r.ParsedAt = d.ParsedAt.UTC().Format(time.RFC3339Nano)
	}
	return r
}

func (r *record) dump() crashdump.Dump {
	d := crashdump.Dump{
		ID:              r.ID,
		DeviceKey:       r.DeviceKey,
		ModelCode:       r.ModelCode,
		Chip:            r.Chip,
		FirmwareVersion: r.FirmwareVersion,
		Size:            r.Size,
		SHA256:          r.SHA256,
		ParseStatus:     crashdump.Status(r.ParseStatus),
		ParseAttempt:    r.ParseAttempt,
		Requeues:        r.Requeues,
		Parser:          r.Parser,
		DurationMS:      r.DurationMS,
		ParseError:      r.ParseError,
		Output:          r.Output,
		OutputKey:       r.OutputKey,
		Signature:       r.Signature,
		TopFrame:        r.TopFrame,
	}
	d.UploadedAt, _ = time.Parse(time.RFC3339Nano, r.UploadedAt)
	if r.ParsedAt != "" {
		d.ParsedAt, _ = time.Parse(time.RFC3339Nano, r.ParsedAt)
	}
	if r.LeaseUntil != 0 {
		d.LeaseUntil = time.Unix(r.LeaseUntil, 0)
	}
	return d
}
