package file

import (
	"bufio"
	"io"
	"os"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// charmaps are the single-byte encodings a CSV file may be transcoded from.
var charmaps = map[string]*charmap.Charmap{
	kalla.EncodingLatin1:      charmap.ISO8859_1,
	kalla.EncodingWindows1252: charmap.Windows1252,
}

// encodingHint is appended to a "not UTF-8" error: what to set instead.
const encodingHint = `set "csv": {"encoding": "latin-1"} (or "windows-1252") in the source if that is the file's encoding`

// transcode writes a UTF-8 copy of the file at path, which is in the named
// single-byte encoding, into dir (the system's temporary folder when
// empty), and returns the copy's path and a function that removes it.
// DuckDB and Kalla's own checks then read the copy as any UTF-8 file. A
// byte the encoding leaves undefined (five in Windows-1252) is an error
// naming its line, not a replacement character.
func (s *Source) transcode(path, enc, dir string) (string, func(), error) {
	cm := charmaps[enc]
	if cm == nil {
		return "", nil, kalla.Errorf(kalla.EINVALID, "source %s: csv.encoding %q is not supported", s.name(), enc)
	}
	in, err := os.Open(path)
	if err != nil {
		return "", nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot open file", s.name())
	}
	defer in.Close()
	out, remove, err := scratch.CreateTemp(dir, "kalla-utf8-", "*.csv")
	if err != nil {
		return "", nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: cannot create the UTF-8 copy", s.name())
	}
	fail := func(err error) (string, func(), error) {
		out.Close()
		remove()
		return "", nil, err
	}
	r := bufio.NewReaderSize(in, 1<<20)
	w := bufio.NewWriterSize(out, 1<<20)
	line := 1
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: read file", s.name()))
		}
		if b == '\n' {
			line++
		}
		if b < 0x80 {
			w.WriteByte(b)
			continue
		}
		ru := cm.DecodeByte(b)
		if ru == encoding.ASCIISub || ru == '\ufffd' {
			return fail(kalla.Errorf(kalla.EINVALID, "source %s: line %d has byte 0x%02X, which %s does not define: check csv.encoding", s.name(), line, b, enc))
		}
		w.WriteRune(ru)
	}
	if err := w.Flush(); err != nil {
		return fail(kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: write the UTF-8 copy", s.name()))
	}
	if err := out.Close(); err != nil {
		remove()
		return "", nil, kalla.WrapError(kalla.EUNAVAILABLE, err, "source %s: write the UTF-8 copy", s.name())
	}
	return out.Name(), remove, nil
}
