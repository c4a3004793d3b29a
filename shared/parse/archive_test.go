package parse_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// TestArchives_OpenArchive checks the S3 ranged reader the firmware ZIP is
// read through.
func TestArchives_OpenArchive(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, &fakeParser{})
	data := randomBytes(200 << 10)
	e.putObject(t, "firmware/x/1.zip", data)

	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := e.archives.OpenArchive(ctx, "firmware/x/2.zip"); !errors.Is(err, crashdump.ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
	t.Run("OKReadAt", func(t *testing.T) {
		a, err := e.archives.OpenArchive(ctx, "firmware/x/1.zip")
		if err != nil {
			t.Fatal(err)
		}
		if a.Size() != int64(len(data)) || a.ETag() == "" {
			t.Fatalf("got size %d etag %q, want %d and an ETag", a.Size(), a.ETag(), len(data))
		}
		gets := e.archives.Requests()
		for _, r := range []struct{ off, n int }{{0, 10}, {5, 4096}, {100, 30000}, {len(data) - 7, 7}, {150 << 10, 40 << 10}} {
			p := make([]byte, r.n)
			n, err := a.ReadAt(p, int64(r.off))
			if err != nil || n != r.n || !bytes.Equal(p, data[r.off:r.off+r.n]) {
				t.Errorf("ReadAt(%d, %d): got %d, %v, want the object's bytes", r.n, r.off, n, err)
			}
		}
		// The first block (64 KiB read-ahead) serves the next two reads.
		if got := e.archives.Requests() - gets; got != 3 {
			t.Errorf("got %d GETs for five reads, want 3", got)
		}
	})
	t.Run("ErrEOF", func(t *testing.T) {
		a, _ := e.archives.OpenArchive(ctx, "firmware/x/1.zip")
		p := make([]byte, 10)
		if n, err := a.ReadAt(p, int64(len(data)-4)); n != 4 || err != io.EOF {
			t.Errorf("read across the end: got %d, %v, want 4, EOF", n, err)
		}
		if n, err := a.ReadAt(p, int64(len(data))); n != 0 || err != io.EOF {
			t.Errorf("read at the end: got %d, %v, want 0, EOF", n, err)
		}
	})
	t.Run("ErrReplaced", func(t *testing.T) {
		e.putObject(t, "firmware/x/3.zip", data)
		a, _ := e.archives.OpenArchive(ctx, "firmware/x/3.zip")
		e.putObject(t, "firmware/x/3.zip", randomBytes(len(data)))
		p := make([]byte, 10)
		if _, err := a.ReadAt(p, 0); err == nil || a.Err() == nil {
			t.Errorf("got %v (Err %v), want a failed read of the replaced object", err, a.Err())
		}
	})
}
