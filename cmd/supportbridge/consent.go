package main

import (
	"io/fs"

	"github.com/supportbridge/supportbridge"
)

// siteUI is the customer's admin page, from the files embedded in the binary.
func siteUI() fs.FS {
	sub, err := fs.Sub(supportbridge.SiteAdmin, "web/site-admin")
	if err != nil {
		panic(err) // the path is fixed at build time
	}
	return sub
}
