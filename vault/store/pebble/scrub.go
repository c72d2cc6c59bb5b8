package pebble

import (
	"errors"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// scrubFS is the subject-keys instance's file system: a file Pebble
// deletes (an obsolete table, a flushed WAL segment, an old manifest) is
// first overwritten with zeros and synced, and a WAL segment is never
// recycled (Pebble would otherwise rename an old segment and write over it
// only as far as the new log reaches, leaving the old tail, key material
// included, in the file). Below the file system this is best effort.
type scrubFS struct {
	vfs.FS
}

func (f scrubFS) Remove(name string) error {
	if err := zeroFile(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return f.FS.Remove(name)
}

// ReuseForWrite declines reuse, which vfs.FS permits: the old file is
// scrubbed and removed, and newname created empty.
func (f scrubFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := f.Remove(oldname); err != nil {
		return nil, err
	}
	return f.FS.Create(newname, category)
}

// zeroFile overwrites a regular file's contents with zeros and syncs it.
func zeroFile(name string) error {
	fi, err := os.Lstat(name)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	file, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	zeros := make([]byte, min(fi.Size(), 1<<16))
	for off := int64(0); off < fi.Size(); off += int64(len(zeros)) {
		n := min(int64(len(zeros)), fi.Size()-off)
		if _, err := file.WriteAt(zeros[:n], off); err != nil {
			_ = file.Close()
			return err
		}
	}
	if err := file.Sync(); err != nil {
		_ = file.Close()
		return err
	}
	return file.Close()
}
