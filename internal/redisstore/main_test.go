package redisstore

import (
	"testing"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
