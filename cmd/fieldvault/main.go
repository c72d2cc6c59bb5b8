// Command fieldvault is the field-level encryption and tokenisation vault:
// the server (serve) and its command-line client.
//
// Only this package reads flags and the environment, prints, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `fieldvault: field-level encryption and tokenisation vault

Server:
  fieldvault serve [flags]              run the vault (see fieldvault serve -h)
  fieldvault serve --dev                run on a fresh temporary data directory

Client (FIELDVAULT_ADDR, FIELDVAULT_TOKEN):
  fieldvault tokenize    --category C --subject S VALUE...
  fieldvault detokenize  --purpose P --ground TYPE[:REF] [--recipient ID[:CC]] [--reveal full|partial|masked] TOKEN...
  fieldvault subject put ID --type data_subject|third_party [--birth-date YYYY-MM-DD]
  fieldvault subject get ID
  fieldvault consent grant --subject S --category C --purpose P [--explicit] [--recipient ID[:CC]] ...
  fieldvault consent get ID
  fieldvault consent withdraw ID
  fieldvault apikey create --principal NAME --role ROLE...
  fieldvault apikey revoke NAME
  fieldvault keys list                  versions, primary, state, tokens per version
  fieldvault keys rotate --category C   new primary version
  fieldvault keys rewrap [--category C] [--rate N] [--detach]
  fieldvault keys disable|enable|destroy --category C --version V
  fieldvault keys config --category C --auto-rotate 720h
  fieldvault keys rotate-kek            new KEK version; re-wraps the keysets
  fieldvault jobs get|follow ID
  fieldvault bench --scenario S [--start | --addr URL] [--baseline transit]   load test (see fieldvault bench -h)

Offline:
  fieldvault audit verify [--data-dir D | --dir AUDITDIR] [--public-key HEX|@FILE]
  fieldvault audit verify --redis redis://... (--node N | --all-nodes) --public-key HEX
  fieldvault policy check FILE          validate a policy file
  fieldvault policy default             print the built-in policy
  fieldvault version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code: 0 success, 1 failure,
// 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve", "server":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "tokenize":
		err = cmdTokenize(ctx, args[1:], stdout)
	case "detokenize":
		err = cmdDetokenize(ctx, args[1:], stdout)
	case "subject":
		err = cmdSubject(ctx, args[1:], stdout)
	case "consent":
		err = cmdConsent(ctx, args[1:], stdout)
	case "apikey":
		err = cmdAPIKey(ctx, args[1:], stdout)
	case "policy":
		err = cmdPolicy(args[1:], stdout)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout, stderr)
	case "jobs":
		err = cmdJobs(ctx, args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "fieldvault", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "fieldvault: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "fieldvault: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "fieldvault: error: %v\n", err)
	return 1
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// listFlag is a repeatable (and comma-separated) string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
