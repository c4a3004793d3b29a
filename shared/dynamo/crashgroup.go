package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/crashgroup"
)

// Crash groups live in partitions of their own:
//
//	GROUP#<signature>   GROUP          the group: counts, sets, times, sample
//	GROUP#<signature>   DUMP#<id>      marker: the dump is counted
//	GROUP#<signature>   DEV#<device>   marker: the device is counted
//
// The sparse index groups (group_shard, group_position) holds only group
// items: group_shard is the signature's shard and group_position its last
// seen time and signature (crashgroup.Position).

// IndexGroups is the name of the crash groups index, shared with
// template.yaml.
const IndexGroups = "groups"

var _ crashgroup.Store = (*Store)(nil)

func groupPK(sig string) string { return "GROUP#" + sig }

const groupSK = "GROUP"

// groupRecord is a group item as stored.
type groupRecord struct {
	Signature        string   `dynamodbav:"signature"`
	Chip             string   `dynamodbav:"chip"`
	CrashKind        string   `dynamodbav:"crash_kind"`
	TopFrame         string   `dynamodbav:"top_frame"`
	Count            int64    `dynamodbav:"dump_count"`
	Devices          int64    `dynamodbav:"device_count"`
	FirmwareVersions []string `dynamodbav:"firmware_versions,stringset"`
	Models           []string `dynamodbav:"models,stringset"`
	FirstSeen        string   `dynamodbav:"first_seen"`
	LastSeen         string   `dynamodbav:"last_seen"`
	SampleDumpID     string   `dynamodbav:"sample_dump_id"`
	SampleDeviceKey  string   `dynamodbav:"sample_device_key"`
}

// markerMargin is how much longer than its dump a dump marker is kept, so
// that TTL deletes the dump well before the marker that keeps a re-parse
// of it from counting twice.
const markerMargin = 7 * 24 * time.Hour

// maxGroupAttempts bounds the tries of one group transaction that
// conflicts with concurrent ones on the same group.
const maxGroupAttempts = 8

// seenLayout is the stored form of first_seen and last_seen.
const seenLayout = "2006-01-02T15:04:05.000Z"

// RecordCrash counts c in its group with one transaction: the dump marker
// (only if absent), the device marker (only if absent) and the group's
// counts and sets. When the device marker exists the transaction is
// retried without it and without counting the device; when the dump
// marker exists the dump was counted already. Then the group's last seen
// time and sample move forward, and its first seen time back, by
// conditional updates that are harmless to repeat, so they run on every
// delivery.
func (s *Store) RecordCrash(ctx context.Context, c crashgroup.Crash) (bool, error) {
	counted, err := s.countCrash(ctx, c)
	if err != nil {
		return false, err
	}
	if err := s.advanceGroup(ctx, c); err != nil {
		return counted, err
	}
	return counted, nil
}

func (s *Store) countCrash(ctx context.Context, c crashgroup.Crash) (bool, error) {
	pk := groupPK(c.Signature)
	at := c.UploadedAt.UTC().Format(seenLayout)
	dumpMarker := map[string]types.AttributeValue{
		"pk": str(pk), "sk": str(dumpSK(c.DumpID)),
		"device_key": str(c.DeviceKey), "uploaded_at": str(at),
	}
	if s.RetentionDays > 0 {
		exp := c.UploadedAt.Add(time.Duration(s.RetentionDays)*24*time.Hour + markerMargin)
		dumpMarker["expires_at"] = num(exp.Unix())
	}
	devMarker := map[string]types.AttributeValue{
		"pk": str(pk), "sk": str("DEV#" + c.DeviceKey), "first_dump_id": str(c.DumpID),
	}
	absent := aws.String("attribute_not_exists(pk)")
	newDevice := true
	for attempt := 0; ; attempt++ {
		items := []types.TransactWriteItem{
			{Put: &types.Put{TableName: &s.Table, Item: dumpMarker, ConditionExpression: absent}},
		}
		if newDevice {
			items = append(items, types.TransactWriteItem{
				Put: &types.Put{TableName: &s.Table, Item: devMarker, ConditionExpression: absent},
			})
		}
		items = append(items, types.TransactWriteItem{Update: s.groupUpdate(c, newDevice)})
		_, err := s.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			if err != nil {
				return false, fmt.Errorf("counting %s in its group: %w", c.DumpID, err)
			}
			return true, nil
		}
		code := func(i int) string {
			if i < len(tce.CancellationReasons) {
				return aws.ToString(tce.CancellationReasons[i].Code)
			}
			return ""
		}
		switch {
		case code(0) == "ConditionalCheckFailed":
			return false, nil
		case newDevice && code(1) == "ConditionalCheckFailed":
			newDevice = false
			continue
		case !retryable(tce.CancellationReasons):
			return false, fmt.Errorf("counting %s in its group: %w", c.DumpID, err)
		}
		if attempt+1 == maxGroupAttempts {
			return false, fmt.Errorf("counting %s in its group after %d attempts: %w", c.DumpID, maxGroupAttempts, err)
		}
		// Another transaction held one of the items: back off with
		// jitter and try again.
		wait := time.Duration(10<<min(attempt, 5))*time.Millisecond + rand.N(10*time.Millisecond)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// retryable reports whether a cancelled transaction may pass when tried
// again: another transaction held one of its items, or it was throttled.
func retryable(reasons []types.CancellationReason) bool {
	for _, r := range reasons {
		switch aws.ToString(r.Code) {
		case "", "None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
		default:
			return false
		}
	}
	return true
}

// groupUpdate adds one dump (and one device when newDevice) to the group
// item, creating it if needed. Times and the sample are set only on
// creation; advanceGroup moves them.
func (s *Store) groupUpdate(c crashgroup.Crash, newDevice bool) *types.Update {
	devices := int64(0)
	if newDevice {
		devices = 1
	}
	e := newExpr()
	e.add("dump_count", num(1))
	e.add("device_count", num(devices))
	e.set("signature", str(c.Signature))
	e.set("chip", str(c.Chip))
	e.set("group_shard", str(strconv.Itoa(crashgroup.Shard(c.Signature))))
	e.setIfAbsent("first_seen", str(c.UploadedAt.UTC().Format(seenLayout)))
	e.setIfAbsent("last_seen", str(c.UploadedAt.UTC().Format(seenLayout)))
	e.setIfAbsent("group_position", str(crashgroup.Position(c.UploadedAt, c.Signature)))
	e.setIfAbsent("sample_dump_id", str(c.DumpID))
	e.setIfAbsent("sample_device_key", str(c.DeviceKey))
	// The newest parse names the kind and top frame; a parser that did
	// not report them leaves the earlier ones.
	for name, v := range map[string]string{"crash_kind": c.CrashKind, "top_frame": c.TopFrame} {
		if v != "" {
			e.set(name, str(v))
		} else {
			e.setIfAbsent(name, str(""))
		}
	}
	if c.FirmwareVersion != "" {
		e.add("firmware_versions", &types.AttributeValueMemberSS{Value: []string{c.FirmwareVersion}})
	}
	if c.Model != "" {
		e.add("models", &types.AttributeValueMemberSS{Value: []string{c.Model}})
	}
	return &types.Update{
		TableName:                 &s.Table,
		Key:                       key(groupPK(c.Signature), groupSK),
		UpdateExpression:          aws.String(e.String()),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}
}

// updateExpr builds an update expression with a placeholder for every
// attribute name and value.
type updateExpr struct {
	names      map[string]string
	values     map[string]types.AttributeValue
	sets, adds []string
}

func newExpr() *updateExpr {
	return &updateExpr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (e *updateExpr) ref(name string, v types.AttributeValue) (n, val string) {
	e.names["#"+name] = name
	e.values[":"+name] = v
	return "#" + name, ":" + name
}

func (e *updateExpr) set(name string, v types.AttributeValue) {
	n, val := e.ref(name, v)
	e.sets = append(e.sets, n+" = "+val)
}

func (e *updateExpr) setIfAbsent(name string, v types.AttributeValue) {
	n, val := e.ref(name, v)
	e.sets = append(e.sets, n+" = if_not_exists("+n+", "+val+")")
}

func (e *updateExpr) add(name string, v types.AttributeValue) {
	n, val := e.ref(name, v)
	e.adds = append(e.adds, n+" "+val)
}

// String returns the expression.
func (e *updateExpr) String() string {
	out := "SET " + strings.Join(e.sets, ", ")
	if len(e.adds) > 0 {
		out += " ADD " + strings.Join(e.adds, ", ")
	}
	return out
}

// advanceGroup moves the group's last seen time, position and sample to
// c when c is newer, and its first seen time to c when c is older. A
// condition that does not hold means there is nothing to move.
func (s *Store) advanceGroup(ctx context.Context, c crashgroup.Crash) error {
	at := c.UploadedAt.UTC().Format(seenLayout)
	k := key(groupPK(c.Signature), groupSK)
	updates := []*dynamodb.UpdateItemInput{{
		TableName:           &s.Table,
		Key:                 k,
		UpdateExpression:    aws.String("SET last_seen = :at, group_position = :pos, sample_dump_id = :dump, sample_device_key = :device"),
		ConditionExpression: aws.String("attribute_exists(pk) AND last_seen < :at"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at":     str(at),
			":pos":    str(crashgroup.Position(c.UploadedAt, c.Signature)),
			":dump":   str(c.DumpID),
			":device": str(c.DeviceKey),
		},
	}, {
		TableName:                 &s.Table,
		Key:                       k,
		UpdateExpression:          aws.String("SET first_seen = :at"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND first_seen > :at"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": str(at)},
	}}
	for _, in := range updates {
		_, err := s.Client.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			return fmt.Errorf("moving the seen times of group %s: %w", c.Signature, err)
		}
	}
	return nil
}

// QueryGroups queries one partition of the groups index, from the highest
// position down.
func (s *Store) QueryGroups(ctx context.Context, shard int, q crashgroup.Query, limit int) ([]crashgroup.Group, error) {
	lo, hi := q.Lo, q.Hi
	if lo == "" {
		lo = idFloor
	}
	if hi == "" {
		hi = idCeiling
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(IndexGroups),
		KeyConditionExpression: aws.String("group_shard = :shard AND group_position BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":shard": str(strconv.Itoa(shard)),
			":lo":    str(lo),
			":hi":    str(hi),
		},
		ScanIndexForward: aws.Bool(false),
	}
	var conds []string
	if q.Chip != "" {
		conds = append(conds, "chip = :chip")
		in.ExpressionAttributeValues[":chip"] = str(q.Chip)
	}
	if q.FirmwareVersion != "" {
		conds = append(conds, "contains(firmware_versions, :fv)")
		in.ExpressionAttributeValues[":fv"] = str(q.FirmwareVersion)
	}
	if q.Model != "" {
		conds = append(conds, "contains(models, :model)")
		in.ExpressionAttributeValues[":model"] = str(q.Model)
	}
	if len(conds) > 0 {
		in.FilterExpression = aws.String(strings.Join(conds, " AND "))
	}
	groups, err := queryUpTo(ctx, s.Client, in, limit, func(item map[string]types.AttributeValue) (crashgroup.Group, bool, error) {
		// The position's upper bound is exclusive.
		pos, _ := item["group_position"].(*types.AttributeValueMemberS)
		if q.Hi != "" && (pos == nil || pos.Value >= q.Hi) {
			return crashgroup.Group{}, false, nil
		}
		g, err := decodeGroup(item)
		return g, err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing groups of shard %d: %w", shard, err)
	}
	return groups, nil
}

func decodeGroup(item map[string]types.AttributeValue) (crashgroup.Group, error) {
	var r groupRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return crashgroup.Group{}, fmt.Errorf("decoding group: %w", err)
	}
	g := crashgroup.Group{
		Signature:        r.Signature,
		Chip:             r.Chip,
		CrashKind:        r.CrashKind,
		TopFrame:         r.TopFrame,
		Count:            r.Count,
		Devices:          r.Devices,
		FirmwareVersions: r.FirmwareVersions,
		Models:           r.Models,
		SampleDumpID:     r.SampleDumpID,
		SampleDeviceKey:  r.SampleDeviceKey,
	}
	var err error
	if g.FirstSeen, err = time.Parse(seenLayout, r.FirstSeen); err != nil {
		return g, fmt.Errorf("decoding first_seen of group %s: %w", r.Signature, err)
	}
	if g.LastSeen, err = time.Parse(seenLayout, r.LastSeen); err != nil {
		return g, fmt.Errorf("decoding last_seen of group %s: %w", r.Signature, err)
	}
	if g.FirmwareVersions == nil {
		g.FirmwareVersions = []string{}
	}
	if g.Models == nil {
		g.Models = []string{}
	}
	slices.Sort(g.FirmwareVersions)
	slices.Sort(g.Models)
	return g, nil
}

// GetGroup returns the group of a signature, or false when there is none.
func (s *Store) GetGroup(ctx context.Context, sig string) (crashgroup.Group, bool, error) {
	out, err := s.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.Table,
		Key:            key(groupPK(sig), groupSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return crashgroup.Group{}, false, fmt.Errorf("reading group %s: %w", sig, err)
	}
	if len(out.Item) == 0 {
		return crashgroup.Group{}, false, nil
	}
	g, err := decodeGroup(out.Item)
	return g, err == nil, err
}
