package toolchain

import (
	"fmt"
	"os"
)

// Plugins that cannot be built from the module proxy come as files: the
// release tarball a maintainer was given (or a binary built elsewhere),
// named by an environment variable. ./run-tests sets both from
// ../shared/plugins when that folder has them.
const (
	// DockerPluginEnv names the Pulumi docker provider plugin
	// (pulumi-resource-docker-v<PulumiDockerVersion>-linux-amd64.tar.gz or
	// the binary), installed where it cannot be downloaded.
	DockerPluginEnv = "FASTAPI_INFRA_DOCKER_PLUGIN"
	// GoLanguageHostEnv names the Pulumi Go language host
	// (pulumi-language-go, a tarball or the binary), with which plain
	// `pulumi up` runs main.go; the driver does not need it.
	GoLanguageHostEnv = "FASTAPI_INFRA_LANGUAGE_GO"
)

// DockerPluginInstall is the command that installs the docker provider
// plugin from a file by hand.
func DockerPluginInstall() string {
	return fmt.Sprintf("pulumi plugin install resource docker v%s --file <pulumi-resource-docker-v%s-linux-amd64.tar.gz or the binary>", PulumiDockerVersion, PulumiDockerVersion)
}

// PluginFile is the file the environment variable env names; ok is false
// when it is not set, and err says so when it names nothing.
func PluginFile(env string) (file string, ok bool, err error) {
	file = os.Getenv(env)
	if file == "" {
		return "", false, nil
	}
	if _, err := os.Stat(file); err != nil {
		return file, true, fmt.Errorf("$%s names %s: %w", env, file, err)
	}
	return file, true, nil
}
