package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// runHashPassword implements `gateway hash-password`: it reads a password
// from stdin (its first line) and prints its bcrypt hash, the form
// --admin-ui-password-hash takes, so that the password itself appears in no
// flag, environment or process list.
func runHashPassword(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(io.LimitReader(stdin, 1<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-password: read stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if len(password) < 8 || len(password) > 72 {
		return errors.New("hash-password: give a password of 8 to 72 bytes on stdin")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	_, err = fmt.Fprintln(stdout, string(hash))
	return err
}
