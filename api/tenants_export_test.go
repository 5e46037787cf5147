package api

import (
	"slices"
	"strings"
)

// TenantServices are the services whose every method acts in the caller's
// tenant.
var TenantServices = []string{"JobService", "RunService", "DataModelService", "ConnectionService", "AccessService"}

// TenantMethods returns the full names of every method of the access
// table that belongs to a service of TenantServices, sorted.
func TenantMethods() []string {
	var out []string
	for m := range methodRules {
		for _, svc := range TenantServices {
			if strings.HasPrefix(m, "/intake.v1."+svc+"/") {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out
}
