package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/espfleet/crashdumps/shared/espcore"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

const usage = `usage:
  espcoredump info -elf FIRMWARE.elf [-json] DUMP
      decode DUMP (raw partition bytes, base64 text or ELF core) and print
      the report as text, or as JSON with -json
  espcoredump synth -chip CHIP [-model NAME] [-format FORMAT] -out DIR
      write a synthetic firmware ELF (NAME.elf), a firmware ZIP (NAME.zip
      holding NAME.elf) and a matching dump (coredump.bin, coredump.b64)
`

// run executes one command line; main and the tests share it.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "info":
		return runInfo(args[1:], stdout, stderr)
	case "synth":
		return runSynth(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func runInfo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	elfPath := fs.String("elf", "", "firmware ELF file")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *elfPath == "" || fs.NArg() != 1 {
		fmt.Fprint(stderr, usage)
		return errors.New("info needs -elf and one dump file")
	}
	f, err := os.Open(*elfPath)
	if err != nil {
		return fmt.Errorf("opening firmware: %w", err)
	}
	defer f.Close()
	fw, err := espcore.OpenFirmware(f)
	if err != nil {
		return fmt.Errorf("opening firmware %s: %w", *elfPath, err)
	}
	dump, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("reading dump: %w", err)
	}
	rep, err := espcore.Decode(dump, fw)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", fs.Arg(0), err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = io.WriteString(stdout, rep.Text())
	return err
}

func runSynth(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	chip := fs.String("chip", "esp32c3", "chip: esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, esp32c61, esp32h2, esp32p4")
	model := fs.String("model", "demo", "device model: the name of the ELF inside the ZIP")
	format := fs.String("format", string(espsynth.ELFCRC32V2_1), "dump format")
	out := fs.String("out", "", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("synth needs -out and no arguments")
	}
	elf, err := espsynth.Firmware(*chip)
	if err != nil {
		return err
	}
	dump, err := espsynth.DumpFormat(*chip, elf, espsynth.Format(*format))
	if err != nil {
		return err
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, err := zw.Create(*model + ".elf")
	if err != nil {
		return fmt.Errorf("writing firmware ZIP: %w", err)
	}
	if _, err := w.Write(elf); err != nil {
		return fmt.Errorf("writing firmware ZIP: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("writing firmware ZIP: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating output directory: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{*model + ".elf", elf},
		{*model + ".zip", zb.Bytes()},
		{"coredump.bin", dump},
		{"coredump.b64", espsynth.Base64(dump, false)},
	}
	for _, f := range files {
		p := filepath.Join(*out, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		fmt.Fprintln(stdout, p)
	}
	return nil
}
