package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
)

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("keys needs list, rotate, rewrap, disable, enable, destroy, config or rotate-kek")
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		kv, err := c.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CATEGORY\tTIER\tVERSION\tSTATE\tPRIMARY\tTOKENS\tCREATED")
		for _, cat := range kv.Categories {
			for _, ver := range cat.Versions {
				p := ""
				if ver.Primary {
					p = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", cat.Category, cat.Tier, ver.Version, ver.State, p,
					ver.Tokens, ver.CreatedAt.Format(time.RFC3339))
			}
		}
		return tw.Flush()
	case "rotate":
		fs := newFlagSet("keys rotate")
		cat := fs.String("category", "", "category to rotate (required)")
		if _, err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		if *cat == "" {
			return usagef("keys rotate needs --category")
		}
		res, err := c.RotateKeys(ctx, *cat)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: primary is now version %d\n", res.Category, res.Primary)
		return nil
	case "config":
		fs := newFlagSet("keys config")
		cat := fs.String("category", "", "category (required)")
		every := fs.String("auto-rotate", "", "automatic rotation period, e.g. 720h; 0s switches it off (required)")
		if _, err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		if *cat == "" || *every == "" {
			return usagef("keys config needs --category and --auto-rotate")
		}
		res, err := c.ConfigureKeys(ctx, *cat, &vault.KeyConfigRequest{AutoRotatePeriod: *every})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: automatic rotation %q\n", res.Category, res.AutoRotate)
		return nil
	case "disable", "enable", "destroy":
		fs := newFlagSet("keys " + args[0])
		cat := fs.String("category", "", "category (required)")
		ver := fs.Uint("version", 0, "version (required)")
		if _, err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		if *cat == "" || *ver == 0 {
			return usagef("keys %s needs --category and --version", args[0])
		}
		if _, err := c.KeyVersionAction(ctx, *cat, uint32(*ver), args[0]); err != nil {
			return err
		}
		done := map[string]string{"disable": "disabled", "enable": "enabled", "destroy": "destroyed"}[args[0]]
		fmt.Fprintf(stdout, "%s version %d: %s\n", *cat, *ver, done)
		return nil
	case "rotate-kek":
		n, err := c.RotateKEK(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "KEK rotated; %d keysets re-wrapped\n", n)
		return nil
	case "rewrap":
		fs := newFlagSet("keys rewrap")
		cat := fs.String("category", "", "only this category (default: all)")
		rate := fs.Int("rate", 0, "at most this many tokens per second (default: no limit)")
		detach := fs.Bool("detach", false, "start the job and return its id without waiting")
		if _, err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		job, err := c.Rewrap(ctx, &vault.RewrapRequest{Category: *cat, Rate: *rate})
		if err != nil {
			return err
		}
		if *detach {
			fmt.Fprintln(stdout, job.ID)
			return nil
		}
		return followJob(ctx, c, job.ID, stdout, stderr)
	}
	return usagef("unknown keys command %q", args[0])
}

// followJob polls a job and draws a progress bar on stderr until it ends.
func followJob(ctx context.Context, c *client.Client, id string, stdout, stderr io.Writer) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		j, err := c.GetJob(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "\r%s", progressLine(j))
		if j.State != vault.JobRunning {
			fmt.Fprintln(stderr)
			fmt.Fprintf(stdout, "%s %s: %d scanned, %d moved, %d skipped\n", j.ID, j.State, j.Scanned, j.Moved, j.Skipped)
			if j.State != vault.JobDone {
				return fmt.Errorf("job %s ended %s: %s", j.ID, j.State, j.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr)
			return fmt.Errorf("stopped following job %s (it keeps running): %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

func progressLine(j *vault.Job) string {
	const width = 30
	filled := int(j.Progress * width)
	bar := strings.Repeat("#", filled) + strings.Repeat("-", width-filled)
	eta := ""
	if j.ETASeconds > 0 {
		eta = " ETA " + (time.Duration(j.ETASeconds) * time.Second).String()
	}
	return fmt.Sprintf("[%s] %5.1f%% %s/%s tokens%s   ", bar, j.Progress*100,
		strconv.FormatInt(j.Scanned, 10), strconv.FormatInt(j.Total, 10), eta)
}

func cmdJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || (args[0] != "get" && args[0] != "follow") {
		return usagef("jobs needs get ID or follow ID")
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	if args[0] == "follow" {
		return followJob(ctx, c, args[1], stdout, stderr)
	}
	j, err := c.GetJob(ctx, args[1])
	if err != nil {
		return err
	}
	return printJSON(stdout, j)
}
