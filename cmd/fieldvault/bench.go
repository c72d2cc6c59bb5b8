package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/bench"
)

const benchUsage = `fieldvault bench: load test a fieldvault server (and Vault Transit as the baseline)

  fieldvault bench --scenario S[,S...] (--start [--store URL] [--inprocess] | --addr URL --token KEY) [flags]
  fieldvault bench report [--section results|targets|reference] FILE.json...   markdown tables

Scenarios:
%s
Examples:
  fieldvault bench --start --scenario tokenize -c 32 --duration 30s
  fieldvault bench --start --scenario tokenize-batch,detokenize-batch --json out.json --plot out.html
  fieldvault bench --start --scenario tokenize --rate 20000 --duration 60s          (open loop)
  fieldvault bench --start --scenario tokenize --prefill 10000000                   (p99 on a full store)
  fieldvault bench --start --scenario rewrap --prefill 1000000
  fieldvault bench --addr http://127.0.0.1:8280 --token KEY --scenario tokenize \
      --baseline transit --vault-addr http://127.0.0.1:8200 --vault-token TOKEN

Flags:
`

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return cmdBenchReport(args[1:], stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		var sc strings.Builder
		for _, s := range bench.Scenarios {
			fmt.Fprintf(&sc, "  %-18s %s\n", s.Name, s.What)
		}
		fmt.Fprintf(stderr, benchUsage, sc.String())
		fs.PrintDefaults()
	}
	var o bench.Options
	scenarios := fs.String("scenario", bench.ScenarioTokenize, "scenario, or several separated by commas (run in order on one server)")
	fs.IntVar(&o.Batch, "batch", 0, "fields per request (default 1000 for the -batch scenarios, 1 otherwise)")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "workers: requests in flight at most")
	fs.IntVar(&o.Concurrency, "c", 32, "shorthand for --concurrency")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop at this many requests/s, latency from each request's intended start (0: closed loop)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "measured time per scenario")
	fs.Int64Var(&o.Requests, "requests", 0, "measured requests per scenario (instead of --duration)")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "warm-up before each measurement, not counted")
	fs.StringVar(&o.Category, "category", "", "category tokenised (default identity.name; contact.email for deterministic)")
	fs.IntVar(&o.Subjects, "subjects", 1000, "subjects the tokenise requests spread over")
	fs.IntVar(&o.DetSubjects, "det-subjects", 16, "consenting subjects the detokenise requests read")
	fs.IntVar(&o.PoolPerSubject, "pool", 1024, "tokens per consenting subject (at least --batch)")
	fs.IntVar(&o.Distinct, "distinct", 10000, "distinct values of the deterministic scenario")
	fs.Float64Var(&o.ReadRatio, "read-ratio", 0.5, "share of detokenise requests in the mixed scenario")
	fs.Int64Var(&o.Prefill, "prefill", 0, "tokens to store before measuring (reports the prefill rate)")
	fs.IntVar(&o.PrefillBatch, "prefill-batch", 1000, "prefill batch size")
	fs.IntVar(&o.PrefillConcurrency, "prefill-concurrency", 4, "prefill batches in flight")
	fs.StringVar(&o.Addr, "addr", "", "fieldvault server (FIELDVAULT_ADDR)")
	fs.StringVar(&o.Token, "token", "", "API key (FIELDVAULT_TOKEN)")
	fs.BoolVar(&o.Start, "start", false, "start `fieldvault serve --dev` on a free port with a fresh data directory")
	fs.StringVar(&o.Server.Store, "store", "", "with --start: the server's --store (default pebble), e.g. redis://127.0.0.1:6379/0")
	var serverArgs listFlag
	fs.Var(&serverArgs, "server-arg", "with --start: extra serve flag, e.g. --server-arg=--log-level=warn (repeatable)")
	fs.StringVar(&o.Server.DataDir, "data-dir", "", "with --start: use and keep this data directory instead of a temporary one")
	inprocess := fs.Bool("inprocess", false, "with --start: run the server inside this process (so --cpuprofile sees it)")
	fs.StringVar(&o.Baseline, "baseline", "", "also run the same work against: transit")
	fs.StringVar(&o.VaultAddr, "vault-addr", os.Getenv("VAULT_ADDR"), "Vault/OpenBao address (VAULT_ADDR)")
	fs.StringVar(&o.VaultToken, "vault-token", "", "Vault/OpenBao token (VAULT_TOKEN)")
	fs.StringVar(&o.TransitMount, "transit-mount", "transit", "Transit mount")
	fs.StringVar(&o.TransitKey, "transit-key", "fieldvault-bench", "Transit key (created if missing)")
	jsonPath := fs.String("json", "", "write the report as JSON to this file")
	plotPath := fs.String("plot", "", "write the latency and throughput plot (HTML/SVG) to this file")
	fs.StringVar(&o.Label, "label", "", "label prefixed to each scenario's name in reports")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed of the request streams")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of this process during each measurement (with --inprocess: client and server)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("bench: unexpected arguments %v", fs.Args())
	}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.Scenarios = append(o.Scenarios, s)
		}
	}
	o.Server.Args = serverArgs
	if *inprocess {
		o.Start = true
		o.Server.InProcess = cmdServe
	}
	if !o.Start {
		if o.Addr == "" {
			o.Addr = os.Getenv("FIELDVAULT_ADDR")
		}
		if o.Token == "" {
			o.Token = os.Getenv("FIELDVAULT_TOKEN")
		}
	}
	if o.VaultToken == "" {
		o.VaultToken = os.Getenv("VAULT_TOKEN")
	}
	if !*quiet {
		o.Progress = stderr
	}
	o.Log = stderr
	o.Command = append([]string{"fieldvault", "bench"}, redactArgs(args)...)
	if err := o.Validate(); err != nil {
		return usagef("bench: %v", err)
	}
	if o.CPUProfile != "" && o.Server.InProcess == nil {
		fmt.Fprintln(stderr, "bench: note: without --inprocess the CPU profile covers the load generator only")
	}

	rep, err := bench.Execute(ctx, &o)
	if rep == nil {
		return err
	}
	if werr := rep.WriteText(stdout); werr != nil && err == nil {
		err = werr
	}
	if *jsonPath != "" {
		if werr := rep.WriteJSON(*jsonPath); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if *plotPath != "" {
		if werr := rep.WritePlot(*plotPath); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

// redactArgs hides token values in the recorded command line.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		switch {
		case hide:
			out[i], hide = "REDACTED", false
		case a == "--token" || a == "-token" || a == "--vault-token" || a == "-vault-token":
			out[i], hide = a, true
		case strings.HasPrefix(a, "--token=") || strings.HasPrefix(a, "-token=") ||
			strings.HasPrefix(a, "--vault-token=") || strings.HasPrefix(a, "-vault-token="):
			k, _, _ := strings.Cut(a, "=")
			out[i] = k + "=REDACTED"
		default:
			out[i] = a
		}
	}
	return out
}

func cmdBenchReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench report", flag.ContinueOnError)
	section := fs.String("section", "results", "results | targets | reference")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return usagef("bench report needs report JSON files")
	}
	var reps []*bench.Report
	for _, p := range fs.Args() {
		r, err := bench.ReadReport(p)
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	switch *section {
	case "results":
		bench.WriteMarkdownResults(stdout, reps)
	case "targets":
		bench.WriteMarkdownTargets(stdout, reps)
	case "reference":
		bench.WriteMarkdownReference(stdout, reps)
	default:
		return usagef("bench report: unknown section %q", *section)
	}
	return nil
}
