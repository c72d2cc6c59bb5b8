package pebble

import (
	"errors"
	"io/fs"

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
	if err := f.zero(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
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

// zero overwrites a regular file's contents with zeros and syncs it.
func (f scrubFS) zero(name string) error {
	fi, err := f.FS.Stat(name)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	file, err := f.FS.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	size := fi.Size()
	zeros := make([]byte, min(size, 1<<16))
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := file.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
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
