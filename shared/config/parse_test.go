package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/config"
)

func TestLoadParse(t *testing.T) {
	lookup := func(vars map[string]string) config.Lookup {
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	base := func() map[string]string {
		return map[string]string{
			"COREDUMP_BUCKET": "dumps", "COREDUMP_TABLE": "t",
			"PARSE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/parse",
		}
	}
	t.Run("OKDefaults", func(t *testing.T) {
		c, err := config.LoadParse(lookup(base()))
		if err != nil {
			t.Fatal(err)
		}
		if c.FirmwareBucket != "dumps" || c.SidecarURL != "" || c.SidecarTimeout != 120*time.Second ||
			c.SidecarAttempts != 3 || c.ELFCacheBytes != 512<<20 {
			t.Errorf("got %+v, want the defaults", c)
		}
		if got, want := c.FirmwareZIPKey.Expand("ps1", "1.0"), "firmware/ps1/1.0.zip"; got != want {
			t.Errorf("got ZIP key %q, want %q", got, want)
		}
		if got, want := c.FirmwareELFName.Expand("ps1", "1.0"), "ps1.elf"; got != want {
			t.Errorf("got ELF name %q, want %q", got, want)
		}
	})
	t.Run("OKSet", func(t *testing.T) {
		v := base()
		v["FIRMWARE_BUCKET"] = "fw"
		v["FIRMWARE_ZIP_KEY"] = "builds/{model}-{version}.zip"
		v["FIRMWARE_ELF_NAME"] = "build/{model}-{version}.elf"
		v["PARSE_SIDECAR_URL"] = "http://sidecar.internal:8080/"
		v["PARSE_SIDECAR_TIMEOUT"] = "45"
		v["ELF_CACHE_DIR"] = "/var/cache/elf"
		v["ELF_CACHE_BYTES"] = "1048576"
		c, err := config.LoadParse(lookup(v))
		if err != nil {
			t.Fatal(err)
		}
		if c.FirmwareBucket != "fw" || c.SidecarURL != "http://sidecar.internal:8080" ||
			c.SidecarTimeout != 45*time.Second || c.ELFCacheDir != "/var/cache/elf" || c.ELFCacheBytes != 1<<20 {
			t.Errorf("got %+v", c)
		}
		if got, want := c.FirmwareELFName.Expand("ps1", "2"), "build/ps1-2.elf"; got != want {
			t.Errorf("got ELF name %q, want %q", got, want)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		v := base()
		delete(v, "PARSE_QUEUE_URL")
		v["FIRMWARE_ZIP_KEY"] = "firmware/{model}.zip"
		v["FIRMWARE_ELF_NAME"] = "{chip}.elf"
		v["PARSE_SIDECAR_URL"] = "sidecar:8080"
		v["PARSE_SIDECAR_TIMEOUT"] = "forever"
		_, err := config.LoadParse(lookup(v))
		if err == nil {
			t.Fatal("got nil, want errors")
		}
		for _, want := range []string{"PARSE_QUEUE_URL: is required", "FIRMWARE_ZIP_KEY:", "FIRMWARE_ELF_NAME:",
			"PARSE_SIDECAR_URL:", "PARSE_SIDECAR_TIMEOUT:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want it to name %q", err, want)
			}
		}
	})
}
