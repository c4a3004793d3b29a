package crashdump

import (
	"context"
	"fmt"
)

// RecordRemover and ObjectRemover are the halves of a removal.
type (
	RecordRemover interface {
		DeleteDumps(ctx context.Context, dumps []Dump) error
	}
	ObjectRemover interface {
		Delete(ctx context.Context, keys ...string) error
	}
)

// Remove deletes dumps everywhere, records first and then objects (the raw
// dump and any parsed output), so that a failure midway leaves objects
// without records, which the retention sweep reclaims, and never a record
// that promises bytes that are gone.
func Remove(ctx context.Context, records RecordRemover, objects ObjectRemover, dumps []Dump) error {
	if len(dumps) == 0 {
		return nil
	}
	if err := records.DeleteDumps(ctx, dumps); err != nil {
		return fmt.Errorf("deleting %d records: %w", len(dumps), err)
	}
	keys := make([]string, 0, len(dumps))
	for i := range dumps {
		keys = append(keys, dumps[i].ObjectKey())
		if dumps[i].OutputKey != "" {
			keys = append(keys, dumps[i].OutputKey)
		}
	}
	if err := objects.Delete(ctx, keys...); err != nil {
		return fmt.Errorf("deleting %d objects: %w", len(keys), err)
	}
	return nil
}
