package jobspec

import (
	"strings"
	"testing"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func sftpConn() *intakev1.Connection {
	return &intakev1.Connection{DisplayName: "Partner", Kind: &intakev1.Connection_Sftp{Sftp: &intakev1.SftpConnection{
		Host: "files.example.com", User: "acme", HostKey: "SHA256:abc", PasswordSet: true, PrivateKeySet: true,
	}}}
}

func TestApplyConnectionMaskAndSecretsToKeep(t *testing.T) {
	stored := map[string]bool{SecretSFTPPassword: true, SecretSFTPPrivateKey: true}
	for name, tc := range map[string]struct {
		src   *intakev1.Connection
		paths []string
		check func(t *testing.T, got *intakev1.Connection)
		keep  []string
		bad   string
	}{
		"a field of the kind": {
			src:   &intakev1.Connection{Kind: &intakev1.Connection_Sftp{Sftp: &intakev1.SftpConnection{Port: 2222, Host: "ignored"}}},
			paths: []string{"sftp.port"},
			check: func(t *testing.T, got *intakev1.Connection) {
				if got.GetSftp().GetPort() != 2222 || got.GetSftp().GetHost() != "files.example.com" || got.GetDisplayName() != "Partner" {
					t.Errorf("got %v", got)
				}
			},
			keep: []string{SecretSFTPPassword, SecretSFTPPrivateKey},
		},
		"the whole connection as read keeps the secrets": {
			src:  sftpConn(),
			keep: []string{SecretSFTPPassword, SecretSFTPPrivateKey},
		},
		"a named secret field is cleared": {
			src:   &intakev1.Connection{},
			paths: []string{"sftp.password"},
			keep:  []string{SecretSFTPPrivateKey},
		},
		"a new secret replaces": {
			src:   &intakev1.Connection{Kind: &intakev1.Connection_Sftp{Sftp: &intakev1.SftpConnection{PrivateKey: "new-key"}}},
			paths: []string{"sftp.private_key"},
			check: func(t *testing.T, got *intakev1.Connection) {
				if got.GetSftp().GetPrivateKey() != "new-key" {
					t.Errorf("private key not copied: %v", got)
				}
			},
			keep: []string{SecretSFTPPassword},
		},
		"another kind drops the secrets": {
			src:   &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example.com/"}}},
			paths: []string{"http"},
			check: func(t *testing.T, got *intakev1.Connection) {
				if got.GetHttp().GetUrl() != "https://x.example.com/" || got.GetSftp() != nil {
					t.Errorf("got %v", got)
				}
			},
		},
		"a field of another kind": {
			src:   &intakev1.Connection{Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{Bucket: "b"}}},
			paths: []string{"s3.bucket"},
			bad:   `the connection has sftp, not s3; to change it, name "s3"`,
		},
		"output only": {src: &intakev1.Connection{}, paths: []string{"sftp.password_set"}, bad: "output only"},
		"unknown":     {src: &intakev1.Connection{}, paths: []string{"sftp.nope"}, bad: `unknown field "nope"`},
	} {
		t.Run(name, func(t *testing.T) {
			got := sftpConn()
			ClearSecrets(got)
			vs := ApplyConnectionMask(got, tc.src, tc.paths)
			if tc.bad != "" {
				if len(vs) != 1 || !strings.Contains(vs[0].Description, tc.bad) {
					t.Fatalf("violations %v, want %q", vs, tc.bad)
				}
				return
			}
			if len(vs) > 0 {
				t.Fatal(vs)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			keep := SecretsToKeep(got, stored, tc.paths)
			if len(keep) != len(tc.keep) {
				t.Fatalf("keep %v, want %v", keep, tc.keep)
			}
			for _, p := range tc.keep {
				if !keep[p] {
					t.Errorf("keep %v, want %v", keep, tc.keep)
				}
			}
		})
	}
}

func TestSecretsAndMarks(t *testing.T) {
	c := &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{
		Url: "https://x.example.com/", Auth: &intakev1.HttpConnection_Basic{Basic: &intakev1.BasicAuth{Username: "u", Password: "p"}},
	}}}
	if got := Secrets(c); len(got) != 1 || got[SecretHTTPBasicPassword] != "p" {
		t.Fatalf("Secrets = %v", got)
	}
	if got := SecretSlots(c); len(got) != 1 || got[0] != SecretHTTPBasicPassword {
		t.Fatalf("SecretSlots = %v", got)
	}
	MarkSecrets(c, map[string]bool{SecretHTTPBasicPassword: true})
	if b := c.GetHttp().GetBasic(); b.GetPassword() != "" || !b.GetPasswordSet() {
		t.Fatalf("after MarkSecrets: %v", b)
	}
	SetSecret(c, SecretHTTPBasicPassword, "again")
	SetSecret(c, SecretS3SecretAccessKey, "no slot") // ignored: not an S3 connection
	if got := Secrets(c); len(got) != 1 || got[SecretHTTPBasicPassword] != "again" {
		t.Fatalf("Secrets = %v", got)
	}
}

func TestValidateJobConnection(t *testing.T) {
	sel := &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "a.csv"}}
	httpConn := &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example.com/a.csv"}}}
	for name, tc := range map[string]struct {
		job   *intakev1.Job
		field string
		want  string
	}{
		"stored":        {&intakev1.Job{ConnectionName: "connections/erp", File: sel}, "", ""},
		"inline":        {&intakev1.Job{Connection: httpConn}, "", ""},
		"none":          {&intakev1.Job{}, "job.connection", "required"},
		"both":          {&intakev1.Job{Connection: httpConn, ConnectionName: "connections/erp", File: sel}, "job.connection_name", "not both"},
		"bad name":      {&intakev1.Job{ConnectionName: "erp", File: sel}, "job.connection_name", "not a connection name"},
		"no file":       {&intakev1.Job{ConnectionName: "connections/erp"}, "job.file", "required with connection_name"},
		"inline + file": {&intakev1.Job{Connection: httpConn, File: sel}, "job.file", "only with connection_name"},
		"inline sftp":   {&intakev1.Job{Connection: sftpConn()}, "job.connection.sftp", "cannot be inline"},
	} {
		var vs Violations
		validateJobConnection(&vs, "job", tc.job)
		if tc.field == "" {
			if len(vs) > 0 {
				t.Errorf("%s: %v", name, vs)
			}
			continue
		}
		found := false
		for _, v := range vs {
			if v.Field == tc.field && strings.Contains(v.Description, tc.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: violations %v, want %s: %q", name, vs, tc.field, tc.want)
		}
	}
}
