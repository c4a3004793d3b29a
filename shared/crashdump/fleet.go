package crashdump

import (
	"errors"
	"hash/fnv"
)

// FleetShards is how many partitions of the fleet-wide index one day of
// uploads is spread over, so that a crash burst on one day does not make one
// hot partition. Readers query every shard of a day and merge.
const FleetShards = 4

// DeviceShards is how many partitions the device registry is spread over.
const DeviceShards = 16

// FleetShard returns the fleet-index shard of a dump id.
func FleetShard(id string) int { return int(hash32(id) % FleetShards) }

// DeviceShard returns the registry shard of a device key.
func DeviceShard(deviceKey string) int { return int(hash32(deviceKey) % DeviceShards) }

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// Sentinel errors that storage adapters return and the domain interprets.
var (
	// ErrDuplicate means the device already has a dump with these bytes.
	ErrDuplicate = errors.New("duplicate dump")
	// ErrRateLimited means the device reached its hourly upload limit.
	ErrRateLimited = errors.New("upload rate limit reached")
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a conditional write lost to the current state.
	ErrConflict = errors.New("state conflict")
)
