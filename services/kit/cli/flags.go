package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// FlagSet is a flag.FlagSet whose every flag defaults to an environment
// variable named after it, so a service can be configured by flags, by its
// deployment's environment, or both.
type FlagSet struct {
	*flag.FlagSet
	envPrefix string
}

// NewFlagSet returns an empty flag set that writes --help and parse errors
// to out. header opens the usage text: the usage lines and a sentence on what
// the command does, without a final newline; a line on the environment
// variables and the flags follow it. envPrefix names the variables, see
// EnvName.
func NewFlagSet(name, envPrefix, header string, out io.Writer) *FlagSet {
	fs := &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), envPrefix: envPrefix}
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nEvery flag may also be set by the environment variable named beside it.\n\n", header)
		fs.PrintDefaults()
	}
	return fs
}

// EnvName is the environment variable of the flag named flagName: prefix
// followed by the flag's name upper-cased, dashes turned into underscores
// (--data-dir with prefix PARLEY_ROOMS_ is PARLEY_ROOMS_DATA_DIR).
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse sets every flag from its environment variable (looked up with
// getenv) where that is not empty, then from args, which take precedence. It
// returns flag.ErrHelp for --help, and an error for positional arguments,
// which no service takes. Call it once, after defining every flag: it adds
// each flag's variable to its usage.
func (fs *FlagSet) Parse(args []string, getenv func(string) string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(fs.envPrefix, f.Name)
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, env)
		if v := getenv(env); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", env, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.FlagSet.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}
