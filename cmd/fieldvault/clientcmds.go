package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parseArgs parses flags anywhere among the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdTokenize(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("tokenize")
	cat := fs.String("category", "", "category, e.g. contact.phone (required)")
	subj := fs.String("subject", "", "subject id (required)")
	det := fs.String("deterministic", "", "true | false; default: the category's default")
	asJSON := fs.Bool("json", false, "print the full JSON response")
	values, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *cat == "" || *subj == "" || len(values) == 0 {
		return usagef("tokenize needs --category, --subject and at least one VALUE")
	}
	req := &vault.TokenizeRequest{}
	for _, v := range values {
		it := vault.TokenizeItem{Category: *cat, Subject: *subj, Value: v}
		switch *det {
		case "":
		case "true", "false":
			b := *det == "true"
			it.Deterministic = &b
		default:
			return usagef("--deterministic must be true or false")
		}
		req.Items = append(req.Items, it)
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	res, err := c.Tokenize(ctx, req)
	if err != nil {
		return describe(err)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	for _, it := range res.Items {
		fmt.Fprintln(stdout, it.Token)
	}
	return nil
}

// describe adds per-item details to API errors for the terminal.
func describe(err error) error {
	var e *client.APIError
	if ok := asAPIError(err, &e); !ok || len(e.Items) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString(err.Error())
	for i, it := range e.Items {
		if it != nil {
			fmt.Fprintf(&b, "\n  item %d: %s: %s", i, it.Code, it.Message)
		}
	}
	return fmt.Errorf("%s", b.String())
}

func asAPIError(err error, target **client.APIError) bool {
	e, ok := err.(*client.APIError)
	if ok {
		*target = e
	}
	return ok
}

// parseParty parses ID[:CC].
func parseParty(s string) (string, string) {
	id, cc, _ := strings.Cut(s, ":")
	return id, strings.ToUpper(cc)
}

func cmdDetokenize(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("detokenize")
	purpose := fs.String("purpose", "", "purpose, e.g. marketing (required)")
	ground := fs.String("ground", "", "ground TYPE[:REF], e.g. consent:c_... (required)")
	recipient := fs.String("recipient", "", "recipient ID[:COUNTRY]")
	transfer := fs.String("transfer-basis", "", "transfer basis TYPE[:REF] for recipients abroad")
	reveal := fs.String("reveal", "full", "full | partial | masked")
	onBehalf := fs.String("on-behalf-of", "", "person the call is made for")
	asJSON := fs.Bool("json", false, "print the full JSON response")
	tokens, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *purpose == "" || *ground == "" || len(tokens) == 0 {
		return usagef("detokenize needs --purpose, --ground and at least one TOKEN")
	}
	gt, gr, _ := strings.Cut(*ground, ":")
	req := &vault.DetokenizeRequest{Purpose: *purpose, Ground: &policy.Ground{Type: gt, Ref: gr},
		Reveal: *reveal, Tokens: tokens, OnBehalfOf: *onBehalf}
	if *recipient != "" {
		id, cc := parseParty(*recipient)
		req.Recipient = &policy.Recipient{ID: id, Country: cc}
	}
	if *transfer != "" {
		tt, tr, _ := strings.Cut(*transfer, ":")
		req.TransferBasis = &policy.Ground{Type: tt, Ref: tr}
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	res, err := c.Detokenize(ctx, req)
	if res == nil {
		return err
	}
	if *asJSON {
		if perr := printJSON(stdout, res); perr != nil {
			return perr
		}
		return err
	}
	for _, it := range res.Items {
		switch {
		case it.Denied != nil:
			fmt.Fprintf(stdout, "%s\tDENIED %s: %s\n", it.Token, it.Denied.Code, it.Denied.Message)
		case it.Value != "":
			fmt.Fprintf(stdout, "%s\t%s\n", it.Token, it.Value)
		default:
			fmt.Fprintf(stdout, "%s\t%s\n", it.Token, it.Masked)
		}
	}
	return err
}

func cmdSubject(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("subject needs put or get")
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	switch args[0] {
	case "put":
		fs := newFlagSet("subject put")
		typ := fs.String("type", string(subject.DataSubject), "data_subject | third_party")
		birth := fs.String("birth-date", "", "YYYY-MM-DD")
		married := fs.Bool("married", false, "married (a married minor is sui juris)")
		incapable := fs.Bool("incapable-of-consent", false, "the subject cannot consent (incompetent person)")
		linked := fs.String("linked-to", "", "account holder a third party belongs to")
		pos, err := parseArgs(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usagef("subject put needs exactly one ID")
		}
		req := &vault.PutSubjectRequest{Type: subject.Type(*typ), BirthDate: *birth, Married: *married, LinkedTo: *linked}
		if *incapable {
			f := false
			req.CapableOfConsent = &f
		}
		s, err := c.PutSubject(ctx, pos[0], req)
		if err != nil {
			return err
		}
		return printJSON(stdout, s)
	case "get":
		if len(args) != 2 {
			return usagef("subject get needs exactly one ID")
		}
		s, err := c.GetSubject(ctx, args[1])
		if err != nil {
			return err
		}
		return printJSON(stdout, s)
	}
	return usagef("unknown subject command %q", args[0])
}

func cmdConsent(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("consent needs grant, get or withdraw")
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	switch args[0] {
	case "grant":
		fs := newFlagSet("consent grant")
		subj := fs.String("subject", "", "subject id (required)")
		var cats, purposes, recipients, dests listFlag
		fs.Var(&cats, "category", "category (repeatable)")
		fs.Var(&purposes, "purpose", "purpose (repeatable)")
		fs.Var(&recipients, "recipient", "recipient ID[:COUNTRY] (repeatable)")
		fs.Var(&dests, "destination", "transfer destination country (repeatable)")
		explicit := fs.Bool("explicit", false, "explicit consent (needed for sensitive categories)")
		informed := fs.Bool("informed-of-inadequacy", false, "the subject was told the destination's protection is inadequate")
		method := fs.String("method", consent.MethodInApp, "collection method: in_app | web_form | paper | ...")
		notice := fs.String("notice-version", "", "privacy notice version the consent refers to (required)")
		guardian := fs.String("guardian", "", "verified guardian id (for minors)")
		bySubject := fs.Bool("by-subject", true, "granted by the subject")
		expires := fs.String("expires", "", "expiry, RFC 3339")
		if _, err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		req := &vault.GrantConsentRequest{Subject: *subj, Explicit: *explicit, Categories: cats, Purposes: purposes,
			Destinations: dests, InformedOfInadequacy: *informed, CollectionMethod: *method, NoticeVersion: *notice}
		if *bySubject {
			req.GrantedBy = append(req.GrantedBy, consent.Grantor{Party: consent.PartySubject, ID: *subj, Verified: true})
		}
		if *guardian != "" {
			req.GrantedBy = append(req.GrantedBy, consent.Grantor{Party: consent.PartyGuardian, ID: *guardian, Verified: true})
		}
		for _, r := range recipients {
			id, cc := parseParty(r)
			req.Recipients = append(req.Recipients, consent.Recipient{ID: id, Country: cc})
		}
		if *expires != "" {
			t, err := time.Parse(time.RFC3339, *expires)
			if err != nil {
				return usagef("--expires: %v", err)
			}
			req.ExpiresAt = &t
		}
		cv, err := c.GrantConsent(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, cv.ID)
		return nil
	case "get":
		if len(args) != 2 {
			return usagef("consent get needs exactly one ID")
		}
		cv, err := c.GetConsent(ctx, args[1])
		if err != nil {
			return err
		}
		return printJSON(stdout, cv)
	case "withdraw":
		fs := newFlagSet("consent withdraw")
		channel := fs.String("channel", "cli", "channel the withdrawal came through")
		pos, err := parseArgs(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usagef("consent withdraw needs exactly one ID")
		}
		cv, err := c.WithdrawConsent(ctx, pos[0], &vault.WithdrawConsentRequest{Channel: *channel})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, cv.ID, cv.Status)
		return nil
	}
	return usagef("unknown consent command %q", args[0])
}

func cmdAPIKey(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("apikey needs create or revoke")
	}
	c, err := client.FromEnv()
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		fs := newFlagSet("apikey create")
		principal := fs.String("principal", "", "principal name (required)")
		var roles listFlag
		fs.Var(&roles, "role", "role (repeatable)")
		if _, err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		if *principal == "" || len(roles) == 0 {
			return usagef("apikey create needs --principal and --role")
		}
		res, err := c.CreateAPIKey(ctx, *principal, roles...)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.Key)
		return nil
	case "revoke":
		if len(args) != 2 {
			return usagef("apikey revoke needs exactly one principal")
		}
		n, err := c.RevokeAPIKeys(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d key(s)\n", n)
		return nil
	}
	return usagef("unknown apikey command %q", args[0])
}

func cmdPolicy(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("policy needs check FILE or default")
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			return usagef("policy check needs exactly one FILE")
		}
		data, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		p, err := policy.Load(data)
		if err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		fmt.Fprintf(stdout, "%s: valid (version %s, sha256 %s)\n", args[1], p.Version, p.SHA256())
		return nil
	case "default":
		b, err := policy.Default().Marshal()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	return usagef("unknown policy command %q", args[0])
}
