// podsec-trivy-db writes a tiny trivy vulnerability database (trivy-db schema 2, the one the
// pinned trivy reads) for the podsec tests: the advisories they plant in their test images, and
// the metadata.json next to it that `trivy server --skip-db-update` requires.
//
// Usage: podsec-trivy-db -dir CACHE/db -advisory 'alpine 3.19|pkg|fixed-version|CVE-ID|SEVERITY|title' ...
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
)

type advisories []string

func (a *advisories) String() string     { return strings.Join(*a, ",") }
func (a *advisories) Set(v string) error { *a = append(*a, v); return nil }

type advisory struct {
	platform, pkg, fixed, id string
	severity                 types.Severity
	title                    string
}

func parse(spec string) (advisory, error) {
	f := strings.Split(spec, "|")
	if len(f) != 6 {
		return advisory{}, fmt.Errorf("advisory %q: want 'platform|package|fixed|id|severity|title'", spec)
	}
	if !strings.HasPrefix(f[0], "alpine ") {
		return advisory{}, fmt.Errorf("advisory %q: only 'alpine X.Y' platforms are supported", spec)
	}
	severity, err := types.NewSeverity(f[4])
	if err != nil {
		return advisory{}, fmt.Errorf("advisory %q: %w", spec, err)
	}
	return advisory{f[0], f[1], f[2], f[3], severity, f[5]}, nil
}

func main() {
	dir := flag.String("dir", "", "database directory (trivy's CACHE/db)")
	var specs advisories
	flag.Var(&specs, "advisory", "platform|package|fixed-version|vulnerability-id|SEVERITY|title (repeatable)")
	flag.Parse()
	if *dir == "" || len(specs) == 0 {
		fmt.Fprintln(os.Stderr, "usage: podsec-trivy-db -dir DIR -advisory SPEC [-advisory SPEC...]")
		os.Exit(2)
	}
	var list []advisory
	for _, spec := range specs {
		a, err := parse(spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, "podsec-trivy-db:", err)
			os.Exit(2)
		}
		list = append(list, a)
	}
	if err := build(*dir, list); err != nil {
		fmt.Fprintln(os.Stderr, "podsec-trivy-db:", err)
		os.Exit(1)
	}
}

func build(dir string, list []advisory) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(db.Path(dir))
	if err := db.Init(dir); err != nil {
		return err
	}
	defer db.Close()
	dbc := db.Config{}
	err := dbc.BatchUpdate(func(tx *bolt.Tx) error {
		for _, a := range list {
			source := types.DataSource{ID: vulnerability.Alpine, Name: "Alpine Secdb (podsec test)", URL: "https://secdb.alpinelinux.org/"}
			if err := dbc.PutDataSource(tx, a.platform, source); err != nil {
				return err
			}
			if err := dbc.PutAdvisory(tx, []string{a.platform, a.pkg}, a.id, types.Advisory{FixedVersion: a.fixed}); err != nil {
				return err
			}
			vuln := types.Vulnerability{
				Title:          a.title,
				Description:    a.title + " (planted by the podsec tests)",
				Severity:       a.severity.String(),
				VendorSeverity: types.VendorSeverity{vulnerability.Alpine: a.severity},
			}
			if err := dbc.PutVulnerability(tx, a.id, vuln); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version:    db.SchemaVersion,
		NextUpdate: now.Add(10 * 365 * 24 * time.Hour),
		UpdatedAt:  now,
	})
}
