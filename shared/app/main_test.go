package app_test

import (
	"testing"

	"github.com/espfleet/crashdumps/shared/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }
