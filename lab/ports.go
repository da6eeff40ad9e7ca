package lab

import (
	"fmt"
	"math/rand/v2"
	"net"
)

// FreePort is a TCP port nothing listens on (on any address), for a
// container to publish. It is drawn below the kernel's ephemeral range
// (32768-60999 by default): a port the kernel picked for a listen on :0
// and that was closed again could be given to the next such listen, and
// the Pulumi engine's and plugins' gRPC servers listen on :0. Seen: Pebble's
// published port, picked that way, was taken by the time Docker bound it.
func FreePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free TCP port in 20000-31999 after 200 tries")
}
