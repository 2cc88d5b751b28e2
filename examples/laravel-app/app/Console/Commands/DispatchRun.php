<?php

namespace App\Console\Commands;

use App\Jobs\RecordRun;
use Illuminate\Console\Command;

class DispatchRun extends Command
{
    protected $signature = 'panel:dispatch {label} {--seconds=0 : how long the job works}';

    protected $description = 'Queue a job that records the release that ran it';

    public function handle()
    {
        RecordRun::dispatch($this->argument('label'), (int) $this->option('seconds'));
        $this->info('queued '.$this->argument('label'));

        return 0;
    }
}
