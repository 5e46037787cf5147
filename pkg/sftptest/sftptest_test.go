package sftptest_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/intakehq/intake/pkg/sftptest"
)

// login connects with the given auth method, checking the host key.
func login(t *testing.T, s *sftptest.Server, auth ssh.AuthMethod) (*sftp.Client, error) {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User:              s.User,
		Auth:              []ssh.AuthMethod{auth},
		HostKeyCallback:   ssh.FixedHostKey(s.HostKey),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	sc, err := sftp.NewClient(c)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = sc.Close() })
	return sc, nil
}

func TestSFTPServer(t *testing.T) {
	s := sftptest.New(t)
	mod := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	s.PutFile("exports/a.csv", []byte("id,name\n1,x\n"), mod)

	t.Run("password", func(t *testing.T) {
		c, err := login(t, s, ssh.Password(s.Password))
		if err != nil {
			t.Fatalf("password login: %v", err)
		}
		wd, err := c.Getwd()
		if err != nil || wd != "/" {
			t.Fatalf("login directory = %q, %v; want / (the server's Root)", wd, err)
		}
		f, err := c.Open("exports/a.csv")
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer f.Close()
		got, err := io.ReadAll(f)
		if err != nil || string(got) != "id,name\n1,x\n" {
			t.Fatalf("read = %q, %v", got, err)
		}
		st, err := c.Stat("/exports/a.csv")
		if err != nil || !st.ModTime().Equal(mod) {
			t.Fatalf("stat = %v, %v; want modtime %v", st, err, mod)
		}
	})

	t.Run("key", func(t *testing.T) {
		signer, err := ssh.ParsePrivateKey([]byte(s.ClientKeyPEM))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := login(t, s, ssh.PublicKeys(signer)); err != nil {
			t.Fatalf("key login: %v", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		_, err := login(t, s, ssh.Password("not-"+s.Password))
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("login with a wrong password: %v; want unable to authenticate", err)
		}
	})

	t.Run("chroot", func(t *testing.T) {
		c, err := login(t, s, ssh.Password(s.Password))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat("/etc/passwd"); err == nil {
			t.Fatal("the user sees /etc/passwd: not confined to Root")
		}
		if _, err := c.Create("new.csv"); err == nil {
			t.Fatal("the user may write to Root")
		}
	})

	t.Run("pause", func(t *testing.T) {
		s.Pause()
		conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(make([]byte, 64))
		if n != 0 || err == nil {
			t.Fatalf("a paused server answered: %d bytes, %v", n, err)
		}
		s.Resume()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		banner := make([]byte, 8)
		if _, err := io.ReadFull(conn, banner); err != nil || !bytes.HasPrefix(banner, []byte("SSH-2.0-")) {
			t.Fatalf("banner after resume = %q, %v", banner, err)
		}
	})

}

func TestSFTPServerCleanup(t *testing.T) {
	var root, addr string
	t.Run("server", func(t *testing.T) {
		s := sftptest.New(t)
		root, addr = s.Root, s.Addr()
		s.PutFile("a.csv", []byte("x"), time.Time{})
	})
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("server directory %s still there after cleanup: %v", root, err)
	}
	if conn, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		conn.Close()
		t.Errorf("sshd still listens on %s after cleanup", addr)
	}
}
