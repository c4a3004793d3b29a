package crashdump

import (
	"fmt"
	"regexp"
	"time"
)

// Status is the parse state of a dump.
type Status string

// The parse states. A dump starts PENDING; the parse function claims it
// (PARSING, with a lease) and ends it PARSED or ERROR, or parks it in
// WAITING_FOR_FIRMWARE until the firmware for its model and version appears.
const (
	StatusPending            Status = "PENDING"
	StatusParsing            Status = "PARSING"
	StatusParsed             Status = "PARSED"
	StatusError              Status = "ERROR"
	StatusWaitingForFirmware Status = "WAITING_FOR_FIRMWARE"
)

// Statuses lists every parse state, in the order of a dump's life.
var Statuses = []Status{
	StatusPending, StatusParsing, StatusWaitingForFirmware,
	StatusParsed, StatusError,
}

// ParseStatus checks s against the known parse states.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", Errorf(EInvalid, "parse_status must be one of PENDING, "+
		"PARSING, WAITING_FOR_FIRMWARE, PARSED, ERROR")
}

// Dump is the metadata of one uploaded core dump. The raw bytes live in
// object storage under ObjectKey.
type Dump struct {
	ID              string    `json:"id"`
	DeviceKey       string    `json:"device_key"`
	ModelCode       string    `json:"model_code"`
	Chip            string    `json:"chip"`
	FirmwareVersion string    `json:"firmware_version"`
	Size            int64     `json:"size"`
	SHA256          string    `json:"sha256"`
	UploadedAt      time.Time `json:"uploaded_at"`
	ParseStatus     Status    `json:"parse_status"`

	// Parse bookkeeping, written by the parse function.
	LeaseUntil   time.Time `json:"-"`
	ParseAttempt int       `json:"parse_attempts,omitempty"`
	Requeues     int       `json:"requeues,omitempty"`
	ParsedAt     time.Time `json:"parsed_at,omitzero"`
	Parser       string    `json:"parser,omitempty"`
	DurationMS   int64     `json:"parse_duration_ms,omitempty"`
	ParseError   string    `json:"parse_error,omitempty"`
	Output       string    `json:"output,omitempty"`
	OutputKey    string    `json:"-"`
	Signature    string    `json:"crash_signature,omitempty"`
	TopFrame     string    `json:"top_frame,omitempty"`
}

// ObjectKey is where the raw bytes of the dump live.
func (d *Dump) ObjectKey() string { return ObjectKey(d.DeviceKey, d.ID) }

// DumpPrefix is the object-key prefix under which all dumps live.
const DumpPrefix = "coredumps/"

// ObjectKey is the object key of dump id of the device.
func ObjectKey(deviceKey, id string) string {
	return DumpPrefix + deviceKey + "/" + id + ".dmp"
}

var objectKeyRE = regexp.MustCompile(`^coredumps/([A-Za-z0-9]{1,64})/([0-9A-Z]{26})\.dmp$`)

// ParseObjectKey splits a dump's object key into device key and id. It
// rejects anything that ObjectKey could not have produced.
func ParseObjectKey(key string) (deviceKey, id string, err error) {
	m := objectKeyRE.FindStringSubmatch(key)
	if m == nil {
		return "", "", Errorf(EInvalid, "object key %q is not a dump key", key)
	}
	return m[1], m[2], nil
}

// Chips lists the ESP-IDF targets a dump may come from.
var Chips = []string{
	"esp32", "esp32s2", "esp32s3", "esp32c2", "esp32c3",
	"esp32c5", "esp32c6", "esp32c61", "esp32h2", "esp32p4",
}

// ValidateChip checks that chip names a known ESP-IDF target.
func ValidateChip(chip string) error {
	for _, c := range Chips {
		if c == chip {
			return nil
		}
	}
	if chip == "" {
		return Errorf(EInvalid, "chip is required")
	}
	return Errorf(EInvalid, "chip must be one of the ESP-IDF targets "+
		"(esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, "+
		"esp32c61, esp32h2, esp32p4)")
}

var (
	versionRE   = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)
	deviceKeyRE = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	modelRE     = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
)

// ValidateFirmwareVersion checks a firmware version: 1 to 64 letters,
// digits and "._+-".
func ValidateFirmwareVersion(v string) error {
	if v == "" {
		return Errorf(EInvalid, "firmware_version is required")
	}
	if !versionRE.MatchString(v) {
		return Errorf(EInvalid, "firmware_version must be 1 to 64 "+
			"letters, digits and ._+-")
	}
	return nil
}

// ValidateDeviceKey checks a device key: 1 to 64 letters and digits.
func ValidateDeviceKey(k string) error {
	if !deviceKeyRE.MatchString(k) {
		return Errorf(EInvalid, "device_key must be 1 to 64 letters and digits")
	}
	return nil
}

// ValidateModelCode checks a model code: 1 to 32 lowercase letters and
// digits.
func ValidateModelCode(m string) error {
	if !modelRE.MatchString(m) {
		return Errorf(EInvalid, "model must be 1 to 32 lowercase letters and digits")
	}
	return nil
}

// Device is the identity of an uploading device, taken from its verified
// token and nothing else.
type Device struct {
	ModelCode string
	Key       string
}

// DefaultClientIDPattern is the default shape of a device's client id. It
// must have the named groups "model" and "key".
const DefaultClientIDPattern = `^iotdevice-(?P<model>[a-z0-9]+)-(?P<key>[A-Za-z0-9]+)$`

// ClientIDMatcher extracts a Device from a client id.
type ClientIDMatcher struct {
	re         *regexp.Regexp
	model, key int
}

// NewClientIDMatcher compiles pattern, which must have the named groups
// "model" and "key".
func NewClientIDMatcher(pattern string) (*ClientIDMatcher, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("compiling client id pattern: %w", err)
	}
	m := &ClientIDMatcher{re: re, model: re.SubexpIndex("model"), key: re.SubexpIndex("key")}
	if m.model < 0 || m.key < 0 {
		return nil, fmt.Errorf("client id pattern %q needs the groups (?P<model>...) and (?P<key>...)", pattern)
	}
	return m, nil
}

// Match returns the device a client id names. The model code and key are
// checked against the domain rules whatever the pattern allowed.
func (m *ClientIDMatcher) Match(clientID string) (Device, error) {
	sub := m.re.FindStringSubmatch(clientID)
	if sub == nil {
		return Device{}, Errorf(EUnauthorized, "the token does not name a device")
	}
	d := Device{ModelCode: sub[m.model], Key: sub[m.key]}
	if ValidateModelCode(d.ModelCode) != nil || ValidateDeviceKey(d.Key) != nil {
		return Device{}, Errorf(EUnauthorized, "the token does not name a device")
	}
	return d, nil
}
